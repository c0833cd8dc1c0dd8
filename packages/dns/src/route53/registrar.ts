import {
  ChangeResourceRecordSetsCommand,
  ChangeTagsForResourceCommand,
  type Change,
  type Route53Client,
  type RRType,
} from '@aws-sdk/client-route-53';
import { metasyncError } from '@metasync/shared';
import {
  absoluteName,
  step,
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
import { createHealthChecks } from './health-checks.js';
import { listEntries } from './list-entries.js';
import { movedRecordDeletes } from './moved-records.js';
import {
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
import { listRecordSets, waitInsync } from './zone-reader.js';

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

  const { ensureHealthCheck, deleteUnusedCheck, ownedChecksOf } = createHealthChecks({
    ctx,
    state: options.state,
    tuning,
    call,
    stateKey,
    regionalNameFor,
  });
  const list = (): Promise<DnsEntry[]> => listEntries(ctx, regionalSuffix);

  return { kind: 'route53', register, withdraw, retire, list };
}
