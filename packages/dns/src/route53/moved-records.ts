import type { Change } from '@aws-sdk/client-route-53';
import type { Route53Context } from './context.js';
import { listZoneRecordSets } from './zone-reader.js';

/**
 * DELETEs (exactly as listed) for a mirror's answer records that a register
 * no longer wants: the mirror moved to another region or address family.
 * When such a record is the last of its regional name and type, that
 * region's latency alias goes too, so no alias points at an empty name.
 */
export async function movedRecordDeletes(
  ctx: Route53Context,
  input: { mirrorId: string; keepName: string; keepType: string; regionalSuffix: string; serviceName: string },
): Promise<Change[]> {
  const zone = await listZoneRecordSets(ctx);
  const changes: Change[] = [];
  for (const set of zone) {
    if (set.SetIdentifier !== input.mirrorId || !set.Name?.endsWith(`.${input.regionalSuffix}`)) continue;
    if (set.Name === input.keepName && set.Type === input.keepType) continue;
    const group = zone.filter((other) => other.Name === set.Name && other.Type === set.Type);
    if (group.length === 1) {
      const alias = zone.find(
        (other) => other.Name === input.serviceName && other.Type === set.Type && other.AliasTarget?.DNSName === set.Name,
      );
      if (alias !== undefined) changes.push({ Action: 'DELETE', ResourceRecordSet: alias });
    }
    changes.push({ Action: 'DELETE', ResourceRecordSet: set });
  }
  return changes;
}
