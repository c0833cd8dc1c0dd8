/**
 * `metasync-primary mirror-credential <issue|revoke|list>`: enrolls mirrors by
 * editing `<data>/mirror-credentials.json`, which a running primary follows
 * (credential-store.ts; no restart). The admin API does the same over HTTP
 * (routes/mirror-credentials.ts, what `metasync mirror up` and `retire` call).
 *
 *   metasync-primary mirror-credential issue  --data DIR eu-1   -> prints the new secret once on stdout
 *   metasync-primary mirror-credential revoke --data DIR eu-1   -> "revoked": true (kept for the record)
 *   metasync-primary mirror-credential list   --data DIR        -> mirror id, revoked, created (never a secret)
 *
 * The file is rewritten atomically (temp + rename, mode 0600). `--data`
 * defaults to METASYNC_DATA, as for the daemon.
 */
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { isMetasyncError, metasyncError } from '@metasync/shared';
import { writeFileAtomic } from '@metasync/shared/fs';
import type { TokenCliIo } from '../publish/token-cli.js';
import { readCredentialsFile } from './credential-store.js';
import { issueCredential, MIRROR_CREDENTIALS_FILE, revokeCredential, serializeMirrorCredentials } from './credentials.js';

function usage(message: string): never {
  throw metasyncError('METASYNC_ERR_CLI_USAGE', `metasync-primary mirror-credential: ${message}`);
}

function fileOf(options: { data?: string }, env: NodeJS.ProcessEnv): string {
  const dir = options.data ?? env.METASYNC_DATA;
  if (dir === undefined || dir === '') usage("--data <dir> (or METASYNC_DATA), the primary's data dir, is required");
  return join(dir, MIRROR_CREDENTIALS_FILE);
}

/** Runs one subcommand; resolves to the exit code (0 ok, 2 usage or file problem). */
export async function runMirrorCredentialCommand(argv: readonly string[], env: NodeJS.ProcessEnv, io: TokenCliIo): Promise<number> {
  let action: Promise<void> | undefined;
  const program = new Command('metasync-primary mirror-credential')
    .description('enroll mirrors: manage the credentials in <data>/mirror-credentials.json (the running primary reloads it)')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  const dataOption = ['--data <dir>', "the primary's data dir [env: METASYNC_DATA]"] as const;

  program
    .command('issue')
    .description('issue a credential for a mirror id (replacing any earlier one) and print it once')
    .argument('<mirror-id>')
    .option(...dataOption)
    .action((mirrorId: string, options: { data?: string }) => {
      action = (async () => {
        const path = fileOf(options, env);
        const issued = issueCredential(await readCredentialsFile(path), { mirrorId, nowMs: io.nowMs() });
        await writeFileAtomic(path, serializeMirrorCredentials(issued.entries), { mode: 0o600 });
        io.stdout(`${issued.secret}\n`);
        io.stderr(
          `mirror ${mirrorId} enrolled in ${path}; start it with --mirror-credential-file holding the secret above (shown only once)\n`,
        );
      })();
    });

  program
    .command('revoke')
    .description("revoke a mirror's credential; the running primary refuses it within a second (idempotent)")
    .argument('<mirror-id>')
    .option(...dataOption)
    .action((mirrorId: string, options: { data?: string }) => {
      action = (async () => {
        const path = fileOf(options, env);
        const revoked = revokeCredential(await readCredentialsFile(path), { mirrorId, nowMs: io.nowMs() });
        if (revoked.outcome === 'revoked') await writeFileAtomic(path, serializeMirrorCredentials(revoked.entries), { mode: 0o600 });
        io.stderr(`mirror ${mirrorId}: ${revoked.outcome} in ${path}\n`);
      })();
    });

  program
    .command('list')
    .description('list enrolled mirror ids (never their secrets)')
    .option(...dataOption)
    .action((options: { data?: string }) => {
      action = (async () => {
        for (const entry of await readCredentialsFile(fileOf(options, env))) {
          io.stdout(
            `${entry.mirrorId}\trevoked=${entry.revoked}\tcreated=${entry.createdAt ?? '-'}\trevokedAt=${entry.revokedAt ?? '-'}\n`,
          );
        }
      })();
    });

  try {
    program.parse([...argv], { from: 'user' });
    if (action === undefined) usage('expected a subcommand: issue, revoke or list (see --help)');
    await action;
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (
      isMetasyncError(err) &&
      ['METASYNC_ERR_CLI_USAGE', 'METASYNC_ERR_CONFIG_INVALID', 'METASYNC_ERR_REQUEST_INVALID'].includes(err.code)
    ) {
      io.stderr(`${err.code}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
