import {
  ChangeResourceRecordSetsCommand,
  ChangeTagsForResourceCommand,
  CreateHealthCheckCommand,
  DeleteHealthCheckCommand,
  type Change,
  type Route53Client,
  type RRType,
} from '@aws-sdk/client-route-53';
import { metasyncError } from '@metasync/shared';
import {
  absoluteName,
  systemClock,
  type Clock,
  type DnsEntry,
  type DnsRegistrar,
  type MirrorEndpoint,
  type MirrorRef,
  type StepListener,
} from '../registrar.js';
import { awsCall, DEFAULT_RETRY, type RetryPolicy } from './aws-call.js';
import type { Route53Context } from './context.js';
import { movedRecordDeletes } from './moved-records.js';
import {
  deriveCallerReference,
  healthCheckConfigFor,
  latencyAliasRecordSet,
  mirrorRecordSet,
  recordTypeFor,
  TAG_MANAGED_BY,
  TAG_MANAGED_BY_VALUE,
  TAG_MIRROR_ID,
  TAG_REGION,
  type HealthCheckTuning,
} from './records.js';
import type { MirrorState, StateStore } from './state-file.js';
import { listOwnedHealthChecks, listRecordSets, listZoneRecordSets, waitInsync, type OwnedHealthCheck } from './zone-reader.js';

export interface Route53RegistrarOptions {
  client: Route53Client;
  hostedZoneId: string;
  /** The name clients resolve, e.g. `repo.example.com`. */
  serviceName: string;
  /** Regional names are `<region>.<regionalSuffix>`; default `regions.<serviceName>` (same zone). */
  regionalSuffix?: string;
  /** At most 60. */
  ttlS?: number;
  /** Extra wait after one TTL before the health check goes. */
  drainMarginMs?: number;
  state: StateStore;
  clock?: Clock;
  retry?: RetryPolicy;
  insyncTimeoutMs?: number;
  insyncPollMs?: number;
  healthCheck?: HealthCheckTuning;
}

const ADDRESS_TYPES: readonly RRType[] = ['A', 'AAAA'];
/** Bound on fresh CallerReferences tried when Route53 says one is taken. */
const MAX_GENERATION_BUMPS = 5;

/**
 * Route53 topology (see docs/operations.md, DNS):
 *
 *   repo.example.com  A  latency  SetIdentifier=<region>  ALIAS -> <region>.regions.repo.example.com (EvaluateTargetHealth)
 *   <region>.regions.repo.example.com  A  multivalue  SetIdentifier=<mirrorId>  <address>  HealthCheckId=<its check>
 */
export function createRoute53Registrar(options: Route53RegistrarOptions): DnsRegistrar {
  const ctx: Route53Context = {
    client: options.client,
    hostedZoneId: options.hostedZoneId.replace(/^\/hostedzone\//, ''),
    clock: options.clock ?? systemClock,
    retry: options.retry ?? DEFAULT_RETRY,
    insyncTimeoutMs: options.insyncTimeoutMs ?? 15 * 60_000,
    insyncPollMs: options.insyncPollMs ?? 1_000,
  };
  const ttlS = options.ttlS ?? 60;
  if (!(ttlS >= 1 && ttlS <= 60)) throw new TypeError(`ttlS must be 1..60, got ${ttlS}`);
  const serviceName = absoluteName(options.serviceName);
  const regionalSuffix = absoluteName(options.regionalSuffix ?? `regions.${serviceName}`);
  const drainMarginMs = options.drainMarginMs ?? 10_000;
  const tuning = options.healthCheck ?? { requestIntervalS: 10, failureThreshold: 2 };
  const regionalNameFor = (region: string): string => `${region.toLowerCase()}.${regionalSuffix}`;
  const stateKey = (mirrorId: string): string => `route53/${ctx.hostedZoneId}/${mirrorId}`;
  const call = <T>(what: string, details: Record<string, unknown>, fn: () => Promise<T>, passThrough?: readonly string[]): Promise<T> =>
    awsCall({ what, details, retry: ctx.retry, clock: ctx.clock, passThrough }, fn);

  async function step<T>(
    onStep: StepListener | undefined,
    name: string,
    detail: Record<string, unknown>,
    fn: () => Promise<T>,
  ): Promise<T> {
    await onStep?.({ step: name, phase: 'start', detail });
    const result = await fn();
    await onStep?.({ step: name, phase: 'done', detail });
    return result;
  }

  /** CreateHealthCheck with a CallerReference saved first; a taken reference moves to the next generation. */
  async function ensureHealthCheck(mirror: MirrorEndpoint, st: MirrorState, onStep: StepListener | undefined): Promise<string> {
    const key = stateKey(mirror.mirrorId);
    const regionalName = regionalNameFor(mirror.region);
    const config = healthCheckConfigFor(mirror.healthUrl, tuning);
    for (let bump = 0; bump <= MAX_GENERATION_BUMPS; bump++) {
      const ref = deriveCallerReference({
        hostedZoneId: ctx.hostedZoneId,
        regionalName,
        mirrorId: mirror.mirrorId,
        generation: st.generation,
      });
      if (st.callerReference !== ref) {
        st.callerReference = ref;
        await options.state.put(key, st);
      }
      try {
        const out = await step(onStep, 'create-health-check', { callerReference: ref }, () =>
          call(
            `CreateHealthCheck ${ref} for mirror ${mirror.mirrorId}`,
            { callerReference: ref, mirrorId: mirror.mirrorId },
            () => ctx.client.send(new CreateHealthCheckCommand({ CallerReference: ref, HealthCheckConfig: config })),
            ['HealthCheckAlreadyExists'],
          ),
        );
        const id = out.HealthCheck?.Id;
        if (id === undefined)
          throw metasyncError('METASYNC_ERR_DNS_CALL_FAILED', `CreateHealthCheck ${ref} answered without an Id`, { callerReference: ref });
        if (st.healthCheckId !== undefined && st.healthCheckId !== id && !st.obsoleteHealthCheckIds.includes(st.healthCheckId)) {
          st.obsoleteHealthCheckIds.push(st.healthCheckId);
        }
        st.healthCheckId = id;
        await options.state.put(key, st);
        return id;
      } catch (err) {
        if ((err as { name?: unknown }).name !== 'HealthCheckAlreadyExists') throw err;
        // Taken by a deleted check, or by a live one with another config (the health URL changed).
        const live = (await listOwnedHealthChecks(ctx)).find((c) => c.callerReference === ref);
        if (live !== undefined && !st.obsoleteHealthCheckIds.includes(live.id)) st.obsoleteHealthCheckIds.push(live.id);
        if (live !== undefined && st.healthCheckId === live.id) delete st.healthCheckId;
        st.generation += 1;
        await options.state.put(key, st);
      }
    }
    throw metasyncError(
      'METASYNC_ERR_DNS_CALL_FAILED',
      `CreateHealthCheck for mirror ${mirror.mirrorId}: ${MAX_GENERATION_BUMPS} CallerReferences in a row already taken`,
      {
        mirrorId: mirror.mirrorId,
      },
    );
  }

  /** Record sets anywhere in the zone that still name `healthCheckId` (a wrong --region must not hide one). */
  async function recordsUsingCheck(healthCheckId: string): Promise<string[]> {
    return (await listZoneRecordSets(ctx))
      .filter((set) => set.HealthCheckId === healthCheckId)
      .map((set) => `${set.Name} ${set.Type} ${set.SetIdentifier ?? ''}`);
  }

  /** Deletes a check only once no record uses it; NoSuchHealthCheck means an earlier run did it. */
  async function deleteUnusedCheck(healthCheckId: string): Promise<void> {
    const users = await recordsUsingCheck(healthCheckId);
    if (users.length > 0) {
      throw metasyncError(
        'METASYNC_ERR_DNS_CALL_FAILED',
        `health check ${healthCheckId} is still used by ${users.join(', ')}; not deleting it`,
        { healthCheckId, records: users },
      );
    }
    try {
      await call(
        `DeleteHealthCheck ${healthCheckId}`,
        { healthCheckId },
        () => ctx.client.send(new DeleteHealthCheckCommand({ HealthCheckId: healthCheckId })),
        ['NoSuchHealthCheck'],
      );
    } catch (err) {
      if ((err as { name?: unknown }).name !== 'NoSuchHealthCheck') throw err;
    }
  }

  async function register(mirror: MirrorEndpoint, callOptions: { onStep?: StepListener } = {}): Promise<void> {
    const onStep = callOptions.onStep;
    const key = stateKey(mirror.mirrorId);
    const regionalName = regionalNameFor(mirror.region);
    const type = recordTypeFor(mirror.address);
    const st: MirrorState = (await options.state.get(key)) ?? { generation: 0, obsoleteHealthCheckIds: [] };
    delete st.recordGoneAtMs;
    delete st.deleteChangeId;
    const healthCheckId = await ensureHealthCheck(mirror, st, onStep);
    await step(onStep, 'tag-health-check', { healthCheckId }, () =>
      call(`ChangeTagsForResource healthcheck ${healthCheckId}`, { healthCheckId }, () =>
        ctx.client.send(
          new ChangeTagsForResourceCommand({
            ResourceType: 'healthcheck',
            ResourceId: healthCheckId,
            AddTags: [
              { Key: TAG_MANAGED_BY, Value: TAG_MANAGED_BY_VALUE },
              { Key: TAG_MIRROR_ID, Value: mirror.mirrorId },
              { Key: TAG_REGION, Value: mirror.region },
              { Key: 'Name', Value: `metasync ${mirror.mirrorId} ${mirror.region}` },
            ],
          }),
        ),
      ),
    );
    const changes: Change[] = [
      ...(await movedRecordDeletes(ctx, {
        mirrorId: mirror.mirrorId,
        keepName: regionalName,
        keepType: type,
        regionalSuffix,
        serviceName,
      })),
      { Action: 'UPSERT', ResourceRecordSet: mirrorRecordSet({ regionalName, mirror, ttlS, healthCheckId }) },
      {
        Action: 'UPSERT',
        ResourceRecordSet: latencyAliasRecordSet({
          serviceName,
          regionalName,
          region: mirror.region,
          type,
          hostedZoneId: ctx.hostedZoneId,
        }),
      },
    ];
    const changeId = await step(onStep, 'upsert-records', { regionalName, serviceName }, async () => {
      const out = await call(
        `ChangeResourceRecordSets UPSERT ${regionalName} ${type} ${mirror.mirrorId}`,
        { record: regionalName, setIdentifier: mirror.mirrorId },
        () =>
          ctx.client.send(
            new ChangeResourceRecordSetsCommand({
              HostedZoneId: ctx.hostedZoneId,
              ChangeBatch: { Comment: `metasync register ${mirror.mirrorId}`, Changes: changes },
            }),
          ),
      );
      if (out.ChangeInfo?.Id === undefined)
        throw metasyncError(
          'METASYNC_ERR_DNS_CALL_FAILED',
          `ChangeResourceRecordSets for ${mirror.mirrorId} answered without a change Id`,
          { record: regionalName },
        );
      return out.ChangeInfo.Id;
    });
    await step(onStep, 'wait-insync', { changeId }, () => waitInsync(ctx, changeId));
    for (const obsoleteId of [...st.obsoleteHealthCheckIds]) {
      await step(onStep, 'delete-obsolete-health-check', { healthCheckId: obsoleteId }, () => deleteUnusedCheck(obsoleteId));
      st.obsoleteHealthCheckIds = st.obsoleteHealthCheckIds.filter((id) => id !== obsoleteId);
      await options.state.put(key, st);
    }
  }

  /** Deletes the mirror's answer record exactly as listed (and the region's alias with its last mirror). */
  async function deleteAnswerRecords(mirror: MirrorRef, st: MirrorState, onStep: StepListener | undefined): Promise<void> {
    const regionalName = regionalNameFor(mirror.region);
    for (const type of ADDRESS_TYPES) {
      const sets = await listRecordSets(ctx, regionalName, type);
      const mine = sets.find((set) => set.SetIdentifier === mirror.mirrorId);
      if (mine === undefined) continue;
      // Remember the check the record used before the record goes, so retire deletes it even without other state.
      if (
        mine.HealthCheckId !== undefined &&
        mine.HealthCheckId !== st.healthCheckId &&
        !st.obsoleteHealthCheckIds.includes(mine.HealthCheckId)
      ) {
        st.obsoleteHealthCheckIds.push(mine.HealthCheckId);
        await options.state.put(stateKey(mirror.mirrorId), st);
      }
      const changes: Change[] = [];
      if (sets.length === 1) {
        const alias = (await listRecordSets(ctx, serviceName, type)).find(
          (set) => set.SetIdentifier === mirror.region && set.AliasTarget?.DNSName === regionalName,
        );
        if (alias !== undefined) changes.push({ Action: 'DELETE', ResourceRecordSet: alias });
      }
      changes.push({ Action: 'DELETE', ResourceRecordSet: mine });
      const what = `ChangeResourceRecordSets DELETE ${regionalName} ${type} ${mirror.mirrorId}`;
      try {
        const out = await step(onStep, 'delete-record', { regionalName, type }, () =>
          call(
            what,
            { record: regionalName, setIdentifier: mirror.mirrorId },
            () =>
              ctx.client.send(
                new ChangeResourceRecordSetsCommand({
                  HostedZoneId: ctx.hostedZoneId,
                  ChangeBatch: { Comment: `metasync retire ${mirror.mirrorId}`, Changes: changes },
                }),
              ),
            ['InvalidChangeBatch'],
          ),
        );
        if (out.ChangeInfo?.Id !== undefined) st.deleteChangeId = out.ChangeInfo.Id;
      } catch (err) {
        if ((err as { name?: unknown }).name !== 'InvalidChangeBatch') throw err;
        // A retried DELETE whose first attempt went through: fine if the record is gone now.
        const still = (await listRecordSets(ctx, regionalName, type)).some((set) => set.SetIdentifier === mirror.mirrorId);
        if (still)
          throw metasyncError(
            'METASYNC_ERR_DNS_CALL_FAILED',
            `${what} refused: ${(err as Error).message}`,
            { record: regionalName, setIdentifier: mirror.mirrorId },
            err,
          );
      }
      st.recordGoneAtMs = ctx.clock.now();
      await options.state.put(stateKey(mirror.mirrorId), st);
    }
  }

  async function withdrawWithState(mirror: MirrorRef, st: MirrorState, onStep: StepListener | undefined): Promise<void> {
    const key = stateKey(mirror.mirrorId);
    await deleteAnswerRecords(mirror, st, onStep);
    if (st.recordGoneAtMs === undefined) {
      // Gone before we looked (an earlier run crashed after its DELETE): count the TTL from now.
      st.recordGoneAtMs = ctx.clock.now();
      await options.state.put(key, st);
    }
    const changeId = st.deleteChangeId;
    if (changeId !== undefined) await step(onStep, 'wait-insync', { changeId }, () => waitInsync(ctx, changeId));
    const waitMs = st.recordGoneAtMs + ttlS * 1000 + drainMarginMs - ctx.clock.now();
    await step(onStep, 'wait-ttl', { waitMs: Math.max(0, waitMs) }, () => (waitMs > 0 ? ctx.clock.sleep(waitMs) : Promise.resolve()));
  }

  async function withdraw(mirror: MirrorRef, callOptions: { onStep?: StepListener } = {}): Promise<void> {
    const st: MirrorState = (await options.state.get(stateKey(mirror.mirrorId))) ?? { generation: 0, obsoleteHealthCheckIds: [] };
    await withdrawWithState(mirror, st, callOptions.onStep);
  }

  async function retire(mirror: MirrorRef, callOptions: { onStep?: StepListener } = {}): Promise<void> {
    const onStep = callOptions.onStep;
    const key = stateKey(mirror.mirrorId);
    const regionalName = regionalNameFor(mirror.region);
    const st: MirrorState = (await options.state.get(key)) ?? { generation: 0, obsoleteHealthCheckIds: [] };
    await withdrawWithState(mirror, st, onStep);
    const checkIds = new Set<string>(st.obsoleteHealthCheckIds);
    if (st.healthCheckId !== undefined) checkIds.add(st.healthCheckId);
    for (const owned of await ownedChecksOf(mirror.mirrorId, regionalName, st)) checkIds.add(owned.id);
    for (const id of checkIds) {
      await step(onStep, 'delete-health-check', { healthCheckId: id }, () => deleteUnusedCheck(id));
    }
    await options.state.put(key, { generation: st.generation + 1, obsoleteHealthCheckIds: [] });
  }

  /** Our checks for this mirror: tagged with its id, or untagged with one of its CallerReferences. */
  async function ownedChecksOf(mirrorId: string, regionalName: string, st: MirrorState): Promise<OwnedHealthCheck[]> {
    const refs = new Set<string>();
    for (let generation = 0; generation <= st.generation + 1; generation++) {
      refs.add(deriveCallerReference({ hostedZoneId: ctx.hostedZoneId, regionalName, mirrorId, generation }));
    }
    return (await listOwnedHealthChecks(ctx)).filter((c) => c.mirrorId === mirrorId || (!c.tagged && refs.has(c.callerReference)));
  }

  async function list(): Promise<DnsEntry[]> {
    const checks = await listOwnedHealthChecks(ctx);
    const liveIds = new Set(checks.map((c) => c.id));
    const usedIds = new Set<string>();
    const entries: DnsEntry[] = [];
    for (const set of await listZoneRecordSets(ctx)) {
      const name = set.Name ?? '';
      if (!name.endsWith(`.${regionalSuffix}`) || set.SetIdentifier === undefined || (set.Type !== 'A' && set.Type !== 'AAAA')) continue;
      const entry: DnsEntry = { mirrorId: set.SetIdentifier, region: name.slice(0, -regionalSuffix.length - 1), state: 'record-only' };
      const address = set.ResourceRecords?.[0]?.Value;
      if (address !== undefined) entry.address = address;
      if (set.HealthCheckId !== undefined) {
        entry.healthCheckId = set.HealthCheckId;
        usedIds.add(set.HealthCheckId);
        if (liveIds.has(set.HealthCheckId)) entry.state = 'registered';
      }
      entries.push(entry);
    }
    for (const check of checks) {
      if (usedIds.has(check.id)) continue;
      const entry: DnsEntry = {
        mirrorId: check.mirrorId ?? `(untagged ${check.callerReference})`,
        healthCheckId: check.id,
        state: 'check-only',
      };
      if (check.region !== undefined) entry.region = check.region;
      entries.push(entry);
    }
    return entries;
  }

  return { kind: 'route53', register, withdraw, retire, list };
}
