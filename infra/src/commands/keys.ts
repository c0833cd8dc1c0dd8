import Table from 'cli-table3';
import { isMetasyncError, metasyncError, type PublicKeyInfo } from '@metasync/shared';
import { fetchPrimaryState, rotatePrimaryKey, type RotationAnswer } from '../remote.js';
import { requirePrimary, type CommandContext } from './context.js';

/** The `--primary-key` value a new mirror is pinned with. */
export function pinFor(key: Pick<PublicKeyInfo, 'keyId' | 'publicKey'>): string {
  return `${key.keyId}:${key.publicKey}`;
}

function keysTable(keys: readonly PublicKeyInfo[]): string {
  const table = new Table({ head: ['key id', 'state', 'refused after', '--primary-key'] });
  for (const key of keys) {
    table.push([
      key.keyId,
      key.active ? 'active' : 'retired',
      key.notAfter === undefined ? '-' : new Date(key.notAfter).toISOString(),
      pinFor(key),
    ]);
  }
  return table.toString();
}

/** The primary's signing keys as mirrors see them in GET /sync/v1/state. */
export async function runKeysList(ctx: CommandContext, options: { json: boolean }): Promise<number> {
  const state = await fetchPrimaryState(requirePrimary(ctx.config));
  ctx.io.out(options.json ? JSON.stringify({ keys: state.keys }, null, 2) : keysTable(state.keys));
  return 0;
}

/**
 * A rotation whose answer never arrived (timeout, dropped connection, a 5xx or
 * a body we cannot read) may still have happened on the primary; retrying
 * blindly would rotate twice and retire the key the first rotation made. Only
 * a refused token or a 4xx is known to have changed nothing.
 */
async function rotateOrExplain(primary: string, token: string, overlapMs: number): Promise<RotationAnswer> {
  try {
    return await rotatePrimaryKey({ primary, token, overlapMs });
  } catch (err) {
    if (!isMetasyncError(err)) throw err;
    const status = err.details.status;
    const knownUnchanged = err.code === 'METASYNC_ERR_CLI_USAGE' || (typeof status === 'number' && status >= 400 && status < 500);
    if (knownUnchanged) throw err;
    throw metasyncError(
      err.code,
      `${err.message}. The key may already have rotated: run 'metasync keys list' before retrying`,
      err.details,
      err,
    );
  }
}

/**
 * Rotates the primary's signing key. An overlap of 0 retires the old key at
 * once, so no mirror can learn the new one from it: every mirror must be
 * re-pinned by hand, which is why it takes --force.
 */
export async function runKeysRotate(ctx: CommandContext, options: { overlapMs: number; force: boolean; json: boolean }): Promise<number> {
  const primary = requirePrimary(ctx.config);
  const token = ctx.config.primaryToken;
  if (token === undefined) {
    throw metasyncError(
      'METASYNC_ERR_CLI_USAGE',
      'keys rotate needs a primary token with admin rights: set METASYNC_PRIMARY_TOKEN or METASYNC_PRIMARY_TOKEN_FILE (or "primaryTokenFile" in the config file)',
      {},
    );
  }
  if (options.overlapMs === 0 && !options.force) {
    throw metasyncError(
      'METASYNC_ERR_CLI_USAGE',
      'an overlap of 0 retires the current key at once: no mirror can learn the new key, every ' +
        'one must be restarted with the new --primary-key. Pass --force if that is what you want ' +
        '(after a leak, a short overlap such as 600000 is usually better)',
      {},
    );
  }
  const answer = await rotateOrExplain(primary, token, options.overlapMs);
  if (options.json) {
    ctx.io.out(JSON.stringify(answer, null, 2));
    return 0;
  }
  ctx.io.out(`rotated: key set version ${answer.version}, new active key ${answer.active.keyId}`);
  for (const retired of answer.retired)
    ctx.io.out(`retired ${retired.keyId}: mirrors refuse what it signs after ${new Date(retired.notAfter).toISOString()}`);
  ctx.io.out(
    `running mirrors learn the new key by themselves within the overlap; pin new mirrors with --primary-key ${pinFor(answer.active)}`,
  );
  return 0;
}
