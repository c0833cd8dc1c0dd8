import { isMetasyncError, type StateResponse } from '@metasync/shared';
import { fetchPrimaryState } from '../remote.js';
import { requirePrimary, type CommandContext } from './context.js';
import { collectMirrors, mirrorsTable } from './mirrors-list.js';

/** The primary and every mirror at a glance; exit 0 only when the primary answers and every mirror is fresh. */
export async function runStatus(ctx: CommandContext, options: { json: boolean }): Promise<number> {
  const primary = requirePrimary(ctx.config);
  let state: StateResponse | undefined;
  let primaryError: string | undefined;
  try {
    state = await fetchPrimaryState(primary);
  } catch (err) {
    if (!isMetasyncError(err)) throw err;
    primaryError = err.message;
  }
  const report = await collectMirrors(ctx);
  const healthy = state !== undefined && report.rows.every((row) => row.health === 'fresh');
  if (options.json) {
    ctx.io.out(
      JSON.stringify(
        {
          primary: { url: primary, state: state ?? null, error: primaryError ?? null },
          dnsProvider: ctx.config.dns.provider,
          ...report,
          healthy,
        },
        null,
        2,
      ),
    );
  } else {
    ctx.io.out(
      state === undefined
        ? `primary ${primary}: DOWN (${primaryError ?? ''})`
        : `primary ${primary}: seq ${state.seq} at ${new Date(state.time).toISOString()}, snapshot ${state.snapshotSeq}, journal from ${state.oldestSeq}`,
    );
    ctx.io.out(`dns: ${ctx.config.dns.provider}`);
    ctx.io.out(mirrorsTable(report.rows));
    for (const warning of report.warnings) ctx.io.err(`warning: ${warning}`);
  }
  return healthy ? 0 : 1;
}
