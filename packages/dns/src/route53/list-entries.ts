import type { DnsEntry } from '../registrar.js';
import type { Route53Context } from './context.js';
import { listOwnedHealthChecks, listZoneRecordSets } from './zone-reader.js';

/** What the zone holds for the mirrors: their records under the regional names, and our checks no record uses. */
export async function listEntries(ctx: Route53Context, regionalSuffix: string): Promise<DnsEntry[]> {
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
