/**
 * The Route53 health checks of the mirrors: created idempotently (a
 * CallerReference saved before the call; a taken one moves to the next
 * generation), found again by tag or reference, deleted only once no record
 * uses them (Route53 would let us delete a check a record still names).
 */
import { CreateHealthCheckCommand, DeleteHealthCheckCommand } from '@aws-sdk/client-route-53';
import { metasyncError } from '@metasync/shared';
import { step, type MirrorEndpoint, type StepListener } from '../registrar.js';
import type { Route53Context } from './context.js';
import { deriveCallerReference, healthCheckConfigFor, type HealthCheckTuning } from './records.js';
import type { MirrorState, StateStore } from './state-file.js';
import { listOwnedHealthChecks, listZoneRecordSets, type OwnedHealthCheck } from './zone-reader.js';

const MAX_GENERATION_BUMPS = 5;

/** An AWS call with the registrar's retry policy: what it does, its details for errors, and the error names passed through. */
export type Route53Call = <T>(
  what: string,
  details: Record<string, unknown>,
  fn: () => Promise<T>,
  passThrough?: readonly string[],
) => Promise<T>;

export interface HealthCheckDeps {
  ctx: Route53Context;
  state: StateStore;
  tuning: HealthCheckTuning;
  call: Route53Call;
  stateKey(mirrorId: string): string;
  regionalNameFor(region: string): string;
}

export function createHealthChecks(deps: HealthCheckDeps) {
  /** CreateHealthCheck with a CallerReference saved first; a taken reference moves to the next generation. */
  async function ensureHealthCheck(mirror: MirrorEndpoint, st: MirrorState, onStep: StepListener | undefined): Promise<string> {
    const key = deps.stateKey(mirror.mirrorId);
    const regionalName = deps.regionalNameFor(mirror.region);
    const config = healthCheckConfigFor(mirror.healthUrl, deps.tuning);
    for (let bump = 0; bump <= MAX_GENERATION_BUMPS; bump++) {
      const ref = deriveCallerReference({
        hostedZoneId: deps.ctx.hostedZoneId,
        regionalName,
        mirrorId: mirror.mirrorId,
        generation: st.generation,
      });
      if (st.callerReference !== ref) {
        st.callerReference = ref;
        await deps.state.put(key, st);
      }
      try {
        const out = await step(onStep, 'create-health-check', { callerReference: ref }, () =>
          deps.call(
            `CreateHealthCheck ${ref} for mirror ${mirror.mirrorId}`,
            { callerReference: ref, mirrorId: mirror.mirrorId },
            () => deps.ctx.client.send(new CreateHealthCheckCommand({ CallerReference: ref, HealthCheckConfig: config })),
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
        await deps.state.put(key, st);
        return id;
      } catch (err) {
        if ((err as { name?: unknown }).name !== 'HealthCheckAlreadyExists') throw err;
        // Taken by a deleted check, or by a live one with another config (the health URL changed).
        const live = (await listOwnedHealthChecks(deps.ctx)).find((c) => c.callerReference === ref);
        if (live !== undefined && !st.obsoleteHealthCheckIds.includes(live.id)) st.obsoleteHealthCheckIds.push(live.id);
        if (live !== undefined && st.healthCheckId === live.id) delete st.healthCheckId;
        st.generation += 1;
        await deps.state.put(key, st);
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
    return (await listZoneRecordSets(deps.ctx))
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
      await deps.call(
        `DeleteHealthCheck ${healthCheckId}`,
        { healthCheckId },
        () => deps.ctx.client.send(new DeleteHealthCheckCommand({ HealthCheckId: healthCheckId })),
        ['NoSuchHealthCheck'],
      );
    } catch (err) {
      if ((err as { name?: unknown }).name !== 'NoSuchHealthCheck') throw err;
    }
  }

  /** Our checks for this mirror: tagged with its id, or untagged with one of its CallerReferences. */
  async function ownedChecksOf(mirrorId: string, regionalName: string, st: MirrorState): Promise<OwnedHealthCheck[]> {
    const refs = new Set<string>();
    for (let generation = 0; generation <= st.generation + 1; generation++) {
      refs.add(deriveCallerReference({ hostedZoneId: deps.ctx.hostedZoneId, regionalName, mirrorId, generation }));
    }
    return (await listOwnedHealthChecks(deps.ctx)).filter((c) => c.mirrorId === mirrorId || (!c.tagged && refs.has(c.callerReference)));
  }

  return { ensureHealthCheck, deleteUnusedCheck, ownedChecksOf };
}
