/**
 * Enrollment steps of `mirror up` and `mirror retire`, over the primary's admin
 * API (METASYNC_PRIMARY_TOKEN[_FILE], an admin publish token):
 *
 *   up:     --primary-key-file F  -> F holds the primary's active key as `--primary-key` wants it
 *           --credential-file F   -> F (0600) holds a credential the primary has enrolled for the
 *                                    mirror id; a rerun keeps a file whose credential is still
 *                                    enrolled (compared by sha256), so it never breaks a running mirror.
 *                                    `-` prints a new credential on stdout instead.
 *   retire: revoke the mirror id's credential (idempotent: a rerun finds it revoked).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hasErrno, metasyncError } from '@metasync/shared';
import { writeFileAtomic } from '@metasync/shared/fs';
import type { CliConfig } from '../cli-config.js';
import { fetchPrimaryState, issueMirrorCredential, listMirrorCredentials, revokeMirrorCredential } from '../remote.js';
import { requirePrimary, type CommandContext } from './context.js';
import { pinFor } from './keys.js';

export function requirePrimaryToken(config: CliConfig, what: string): string {
  const token = config.primaryToken;
  if (token === undefined || token === '') {
    throw metasyncError(
      'METASYNC_ERR_CLI_USAGE',
      `${what} needs a primary token with admin rights: set METASYNC_PRIMARY_TOKEN or METASYNC_PRIMARY_TOKEN_FILE (or "primaryTokenFile" in the config file)`,
      {},
    );
  }
  return token;
}

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return undefined;
    throw metasyncError('METASYNC_ERR_CLI_USAGE', `cannot read ${path}: ${(err as Error).message}`, { path }, err);
  }
}

/** Writes the pin and/or the credential a mirror needs to start (before it is waited for). */
export async function enrollMirror(
  ctx: CommandContext,
  options: { mirrorId: string; credentialFile?: string | undefined; primaryKeyFile?: string | undefined },
): Promise<void> {
  const primary = requirePrimary(ctx.config);
  if (options.primaryKeyFile !== undefined) {
    const active = (await fetchPrimaryState(primary)).keys.find((key) => key.active);
    if (active === undefined) throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `${primary} lists no active signing key`, { primary });
    await writeFileAtomic(options.primaryKeyFile, `${pinFor(active)}\n`, { mode: 0o644 });
    ctx.io.err(`pinned key ${active.keyId} written to ${options.primaryKeyFile} (pass it as --primary-key-file)`);
  }
  if (options.credentialFile === undefined) return;
  const token = requirePrimaryToken(ctx.config, 'mirror up --credential-file');
  if (options.credentialFile !== '-') {
    const held = await readIfPresent(options.credentialFile);
    if (held !== undefined && held !== '') {
      const sha256 = createHash('sha256').update(held, 'utf8').digest('hex');
      const enrolled = await listMirrorCredentials({ primary, token });
      if (enrolled.some((e) => e.mirrorId === options.mirrorId && e.sha256 === sha256 && !e.revoked)) {
        ctx.io.err(`${options.mirrorId} is already enrolled with the credential in ${options.credentialFile}`);
        return;
      }
    }
  }
  const { credential } = await issueMirrorCredential({ primary, token, mirrorId: options.mirrorId });
  if (options.credentialFile === '-') {
    ctx.io.out(credential);
    ctx.io.err(`${options.mirrorId} enrolled; its credential is above, shown once (pass it with --mirror-credential-file)`);
    return;
  }
  await writeFileAtomic(options.credentialFile, `${credential}\n`, { mode: 0o600 });
  ctx.io.err(`${options.mirrorId} enrolled; credential written to ${options.credentialFile} (pass it as --mirror-credential-file)`);
}

/** The last step of a retire: the mirror's acks and push stream are refused from now on. */
export async function revokeEnrollment(ctx: CommandContext, options: { mirrorId: string; token: string }): Promise<void> {
  const { outcome } = await revokeMirrorCredential({
    primary: requirePrimary(ctx.config),
    token: options.token,
    mirrorId: options.mirrorId,
  });
  ctx.io.err(
    outcome === 'revoked'
      ? `credential of ${options.mirrorId} revoked`
      : `credential of ${options.mirrorId}: ${outcome === 'unknown' ? 'never enrolled' : 'already revoked'}`,
  );
}
