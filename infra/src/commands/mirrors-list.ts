import Table from 'cli-table3';
import { createRegistrar, type DnsEntry } from '@metasync/dns';
import { isMetasyncError, type MirrorStatus } from '@metasync/shared';
import { fetchPrimaryMirrors, probeMirror, type Health } from '../remote.js';
import { requirePrimary, type CommandContext } from './context.js';
import { EXIT } from '../exit-codes.js';

export interface MirrorRow {
  mirrorId: string;
  region: string;
  endpoint: string;
  /** Applied seq as the primary last heard it (ack), else as the mirror serves it. */
  seq: number | null;
  lagSeq: number | null;
  lagMs: number | null;
  health: Health | 'unknown';
  healthDetail: string;
  /** `none`: no DNS provider configured; `unknown`: the provider could not be asked. */
  dns: DnsEntry['state'] | 'absent' | 'unknown' | 'none';
}

export interface MirrorsReport {
  primarySeq: number | null;
  rows: MirrorRow[];
  warnings: string[];
}

/**
 * Everything known about every mirror: the primary's view, the config, DNS, and a
 * live probe of each. No primary configured is a usage error: without it a
 * mistyped METASYNC_PRIMARY would pass as an empty fleet.
 */
export async function collectMirrors(ctx: CommandContext): Promise<MirrorsReport> {
  const primary = requirePrimary(ctx.config);
  const warnings: string[] = [];
  let fromPrimary: MirrorStatus[] = [];
  let primarySeq: number | null = null;
  try {
    const response = await fetchPrimaryMirrors(primary);
    fromPrimary = response.mirrors;
    primarySeq = response.seq;
  } catch (err) {
    if (!isMetasyncError(err)) throw err;
    warnings.push(`primary: ${err.message}`);
  }
  let dnsEntries: DnsEntry[] | undefined;
  const dns = await createRegistrar(ctx.config);
  if (dns !== undefined) {
    try {
      dnsEntries = await dns.registrar.list();
    } catch (err) {
      if (!isMetasyncError(err)) throw err;
      warnings.push(`dns: ${err.message}`);
    } finally {
      dns.close();
    }
  }
  const ids = new Set<string>([
    ...fromPrimary.map((m) => m.mirrorId),
    ...Object.keys(ctx.config.mirrors),
    ...(dnsEntries ?? []).map((e) => e.mirrorId),
  ]);
  const rows = await Promise.all(
    [...ids].sort().map(async (mirrorId): Promise<MirrorRow> => {
      const status = fromPrimary.find((m) => m.mirrorId === mirrorId);
      const configured = ctx.config.mirrors[mirrorId];
      const entry = dnsEntries?.find((e) => e.mirrorId === mirrorId);
      const endpoint = configured?.url ?? status?.url ?? entry?.address ?? '';
      const probe = endpoint.startsWith('http') ? await probeMirror({ url: endpoint, healthUrl: configured?.healthUrl }) : undefined;
      const seq = status?.seq ?? probe?.seq ?? null;
      return {
        mirrorId,
        region: configured?.region ?? status?.region ?? entry?.region ?? '',
        endpoint,
        seq,
        lagSeq: status?.lagSeq ?? (seq !== null && primarySeq !== null ? Math.max(0, primarySeq - seq) : null),
        lagMs: status?.lagMs ?? null,
        health: probe?.health ?? 'unknown',
        healthDetail: probe?.detail ?? '',
        dns: dns === undefined ? 'none' : dnsEntries === undefined ? 'unknown' : (entry?.state ?? 'absent'),
      };
    }),
  );
  return { primarySeq, rows, warnings };
}

export function mirrorsTable(rows: readonly MirrorRow[]): string {
  const table = new Table({ head: ['mirror', 'region', 'endpoint', 'seq', 'lag', 'health', 'dns'], style: { head: [], border: [] } });
  for (const row of rows) {
    const lag = row.lagSeq === null ? '-' : `${row.lagSeq} seq${row.lagMs === null ? '' : ` / ${row.lagMs} ms`}`;
    table.push([row.mirrorId, row.region, row.endpoint, row.seq === null ? '-' : String(row.seq), lag, row.health, row.dns]);
  }
  return table.toString();
}

/**
 * The table is printed even when the primary or DNS could not be asked (what is
 * known still helps), but the exit code says the list is incomplete: 5 when the
 * primary did not answer, 3 when the DNS provider did not.
 */
export async function runMirrorsList(ctx: CommandContext, options: { json: boolean }): Promise<number> {
  const report = await collectMirrors(ctx);
  if (options.json) ctx.io.out(JSON.stringify(report, null, 2));
  else {
    ctx.io.out(mirrorsTable(report.rows));
    for (const warning of report.warnings) ctx.io.err(`warning: ${warning}`);
  }
  if (report.primarySeq === null) return EXIT.unreachable;
  if (report.warnings.some((warning) => warning.startsWith('dns:'))) return EXIT.dns;
  return EXIT.ok;
}
