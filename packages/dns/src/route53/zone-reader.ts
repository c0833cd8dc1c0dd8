import {
  GetChangeCommand,
  ListHealthChecksCommand,
  ListResourceRecordSetsCommand,
  ListTagsForResourceCommand,
  type HealthCheck,
  type ResourceRecordSet,
  type RRType,
} from '@aws-sdk/client-route-53';
import { metasyncError } from '@metasync/shared';
import { awsCall } from './aws-call.js';
import type { Route53Context } from './context.js';
import { CALLER_REFERENCE_PREFIX, TAG_MANAGED_BY, TAG_MANAGED_BY_VALUE, TAG_MIRROR_ID, TAG_REGION } from './records.js';

const MAX_PAGES = 200;

function call<T>(ctx: Route53Context, what: string, details: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
  return awsCall({ what, details, retry: ctx.retry, clock: ctx.clock }, fn);
}

/** Every record set of one name and type (all set identifiers), as Route53 lists them. */
export async function listRecordSets(ctx: Route53Context, name: string, type: RRType): Promise<ResourceRecordSet[]> {
  const found: ResourceRecordSet[] = [];
  let identifier: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const out = await call(ctx, `ListResourceRecordSets ${name} ${type}`, { name, type }, () =>
      ctx.client.send(
        new ListResourceRecordSetsCommand({
          HostedZoneId: ctx.hostedZoneId,
          StartRecordName: name,
          StartRecordType: type,
          StartRecordIdentifier: identifier,
          MaxItems: 100,
        }),
      ),
    );
    const sets = out.ResourceRecordSets ?? [];
    found.push(...sets.filter((set) => set.Name === name && set.Type === type));
    const last = sets.at(-1);
    if (out.IsTruncated !== true || last === undefined || last.Name !== name || last.Type !== type) return found;
    if (out.NextRecordName !== name || out.NextRecordType !== type) return found;
    identifier = out.NextRecordIdentifier;
  }
  throw metasyncError('METASYNC_ERR_DNS_CALL_FAILED', `ListResourceRecordSets ${name} ${type} did not end after ${MAX_PAGES} pages`, {
    name,
    type,
  });
}

/** Every record set in the zone. */
export async function listZoneRecordSets(ctx: Route53Context): Promise<ResourceRecordSet[]> {
  const found: ResourceRecordSet[] = [];
  let next: { name?: string; type?: RRType; identifier?: string } = {};
  for (let page = 0; page < MAX_PAGES; page++) {
    const out = await call(ctx, `ListResourceRecordSets zone ${ctx.hostedZoneId}`, { hostedZoneId: ctx.hostedZoneId }, () =>
      ctx.client.send(
        new ListResourceRecordSetsCommand({
          HostedZoneId: ctx.hostedZoneId,
          StartRecordName: next.name,
          StartRecordType: next.type,
          StartRecordIdentifier: next.identifier,
          MaxItems: 300,
        }),
      ),
    );
    found.push(...(out.ResourceRecordSets ?? []));
    if (out.IsTruncated !== true) return found;
    next = { name: out.NextRecordName, type: out.NextRecordType, identifier: out.NextRecordIdentifier };
  }
  throw metasyncError(
    'METASYNC_ERR_DNS_CALL_FAILED',
    `ListResourceRecordSets of zone ${ctx.hostedZoneId} did not end after ${MAX_PAGES} pages`,
    {},
  );
}

export interface OwnedHealthCheck {
  check: HealthCheck;
  id: string;
  callerReference: string;
  /** From the tags; absent while a crash left the check untagged. */
  mirrorId?: string;
  region?: string;
  tagged: boolean;
}

/** Health checks with our CallerReference prefix, with their metasync tags. */
export async function listOwnedHealthChecks(ctx: Route53Context): Promise<OwnedHealthCheck[]> {
  const checks: HealthCheck[] = [];
  let marker: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const out = await call(ctx, 'ListHealthChecks', {}, () =>
      ctx.client.send(new ListHealthChecksCommand({ Marker: marker, MaxItems: 100 })),
    );
    checks.push(...(out.HealthChecks ?? []));
    if (out.IsTruncated !== true || out.NextMarker === undefined) break;
    marker = out.NextMarker;
  }
  const owned: OwnedHealthCheck[] = [];
  for (const check of checks) {
    if (check.Id === undefined || check.CallerReference?.startsWith(CALLER_REFERENCE_PREFIX) !== true) continue;
    const id = check.Id;
    const tags = await call(ctx, `ListTagsForResource healthcheck ${id}`, { healthCheckId: id }, () =>
      ctx.client.send(new ListTagsForResourceCommand({ ResourceType: 'healthcheck', ResourceId: id })),
    );
    const byKey = new Map((tags.ResourceTagSet?.Tags ?? []).map((tag) => [tag.Key, tag.Value]));
    const tagged = byKey.get(TAG_MANAGED_BY) === TAG_MANAGED_BY_VALUE;
    const entry: OwnedHealthCheck = { check, id, callerReference: check.CallerReference, tagged };
    const mirrorId = byKey.get(TAG_MIRROR_ID);
    const region = byKey.get(TAG_REGION);
    if (mirrorId !== undefined) entry.mirrorId = mirrorId;
    if (region !== undefined) entry.region = region;
    owned.push(entry);
  }
  return owned;
}

/**
 * Polls GetChange until INSYNC, backing off from `insyncPollMs` to 10 s,
 * bounded by `insyncTimeoutMs`.
 */
export async function waitInsync(ctx: Route53Context, changeId: string): Promise<void> {
  const started = ctx.clock.now();
  let delayMs = ctx.insyncPollMs;
  for (let poll = 0; poll < 10_000; poll++) {
    const out = await call(ctx, `GetChange ${changeId}`, { changeId }, () => ctx.client.send(new GetChangeCommand({ Id: changeId })));
    if (out.ChangeInfo?.Status === 'INSYNC') return;
    if (ctx.clock.now() - started + delayMs > ctx.insyncTimeoutMs) break;
    await ctx.clock.sleep(delayMs);
    delayMs = Math.min(10_000, delayMs * 2);
  }
  throw metasyncError('METASYNC_ERR_DNS_CALL_FAILED', `change ${changeId} did not reach INSYNC within ${ctx.insyncTimeoutMs} ms`, {
    changeId,
  });
}
