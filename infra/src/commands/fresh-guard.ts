import type { DnsEntry } from '@metasync/dns';
import { metasyncError } from '@metasync/shared';
import { joinUrl, probeMirror } from '../remote.js';
import type { CommandContext } from './context.js';

/**
 * The check `mirror retire` and `mirrors roll` run before they take a mirror
 * out of DNS. Health-checked DNS falls back to handing out every address when
 * none is healthy (PowerDNS `ifurlextup` returns them all, Route53 answers with
 * unhealthy records), so removing the last fresh mirror of a region, or of the
 * whole name, sends clients to dead servers. Without --force that is refused
 * before anything changes. Only mirrors still in DNS count, each probed live
 * on the freshness URL its health check uses.
 */
export interface FreshCount {
  mirrorId: string;
  region: string;
  fresh: boolean;
  detail: string;
}

/** Probes every mirror in DNS except `leaving` (by id); unknown freshness URLs count as not fresh. */
export async function probeOthersInDns(
  ctx: CommandContext,
  entries: readonly DnsEntry[],
  leaving: ReadonlySet<string>,
): Promise<FreshCount[]> {
  const others = entries.filter((entry) => entry.state !== 'check-only' && !leaving.has(entry.mirrorId));
  return Promise.all(
    others.map(async (entry): Promise<FreshCount> => {
      const known = ctx.config.mirrors[entry.mirrorId];
      const healthUrl = entry.healthUrl ?? known?.healthUrl ?? (known === undefined ? undefined : joinUrl(known.url, '/health/fresh'));
      const region = entry.region ?? known?.region ?? '';
      if (healthUrl === undefined) return { mirrorId: entry.mirrorId, region, fresh: false, detail: 'freshness URL unknown' };
      const probe = await probeMirror({ url: healthUrl, healthUrl, timeoutMs: 3_000 });
      return {
        mirrorId: entry.mirrorId,
        region,
        fresh: probe.health === 'fresh',
        detail: `${probe.health}${probe.detail === '' ? '' : `: ${probe.detail.slice(0, 80)}`}`,
      };
    }),
  );
}

/** Throws METASYNC_ERR_CLI_NO_FRESH_MIRROR unless the region and the name keep a fresh mirror (or `force`). */
export function assertFreshRemains(
  ctx: CommandContext,
  input: { mirrorId: string; region: string; others: readonly FreshCount[]; force: boolean; command: string },
): void {
  const fresh = input.others.filter((other) => other.fresh);
  const inRegion = fresh.filter((other) => other.region === input.region);
  const listing =
    input.others.length === 0
      ? 'no other mirror is in DNS'
      : `others in DNS: ${input.others.map((o) => `${o.mirrorId} (${o.region}, ${o.detail})`).join('; ')}`;
  const problem =
    fresh.length === 0
      ? `would leave the service name with no fresh mirror in DNS`
      : inRegion.length === 0
        ? `would leave region ${input.region} with no fresh mirror in DNS (its clients would fall back to other regions)`
        : undefined;
  if (problem === undefined) return;
  if (input.force) {
    ctx.io.err(`warning: ${input.command} ${input.mirrorId} ${problem}; going on because of --force (${listing})`);
    return;
  }
  throw metasyncError(
    'METASYNC_ERR_CLI_NO_FRESH_MIRROR',
    `${input.command} ${input.mirrorId} refused: it ${problem}; with no healthy answer DNS hands out dead addresses. ${listing}. Bring up a replacement first, or pass --force. Nothing was changed`,
    { mirrorId: input.mirrorId, region: input.region },
  );
}
