/**
 * `metasync-primary token <create|revoke|list>`: the operator's way to manage the
 * tokens file a running primary follows (auth.ts reloads it, no restart).
 *
 *   metasync-primary token create --tokens-file /etc/metasync/tokens.json --vendor acme --vendor 'acme-*' [--id ci-acme] [--admin]
 *       -> prints the new secret once on stdout; only its sha256 is written
 *   metasync-primary token revoke --tokens-file ... --id ci-acme   -> "revoked": true (kept for the record)
 *   metasync-primary token list   --tokens-file ...                -> id, vendors, admin, revoked, created
 *
 * The file is rewritten atomically (temp + rename, mode 0600), so the primary
 * never reads half of it. `--tokens-file` defaults to METASYNC_TOKENS_FILE.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Command, CommanderError } from 'commander';
import { hasErrno, metasyncError } from '@metasync/shared';
import { writeFileAtomic } from '@metasync/shared/fs';
import { mintToken, parseTokensFile, serializeTokensFile, TOKEN_ID_PATTERN, VENDOR_PATTERN, type TokenEntry } from './tokens.js';

export interface TokenCliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  nowMs: () => number;
}

async function readEntries(path: string, allowMissing: boolean): Promise<TokenEntry[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (allowMissing && hasErrno(err, 'ENOENT')) return [];
    throw metasyncError('METASYNC_ERR_CLI_USAGE', `tokens file ${path} cannot be read: ${(err as Error).message}`, { path }, err);
  }
  return parseTokensFile(text, path);
}

function usage(message: string): never {
  throw metasyncError('METASYNC_ERR_CLI_USAGE', `metasync-primary token: ${message}`);
}

function tokensFileOf(options: { tokensFile?: string }, env: NodeJS.ProcessEnv): string {
  const path = options.tokensFile ?? env.METASYNC_TOKENS_FILE;
  if (path === undefined || path === '') usage('--tokens-file <path> (or METASYNC_TOKENS_FILE) is required');
  return path;
}

/** Runs one token subcommand; resolves to the exit code (0 ok, 2 usage or file problem). */
export async function runTokenCommand(argv: readonly string[], env: NodeJS.ProcessEnv, io: TokenCliIo): Promise<number> {
  let action: Promise<void> | undefined;
  const program = new Command('metasync-primary token')
    .description('manage the scoped publish tokens of --tokens-file (the running primary reloads it)')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  const fileOption = ['--tokens-file <path>', 'the tokens file [env: METASYNC_TOKENS_FILE]'] as const;

  program
    .command('create')
    .description('add a token and print its secret once (only its sha256 is stored)')
    .option(...fileOption)
    .option(
      '--vendor <pattern>',
      'vendor it may publish: acme, acme-* or * (repeatable)',
      (value: string, all: string[]) => [...all, value],
      [] as string[],
    )
    .option('--id <id>', 'name for logs and 403 answers (default: token-<random>)')
    .option('--admin', 'may also call the admin routes (POST /admin/snapshot)', false)
    .action((options: { tokensFile?: string; vendor: string[]; id?: string; admin: boolean }) => {
      action = (async () => {
        const path = tokensFileOf(options, env);
        if (options.vendor.length === 0) usage('create needs at least one --vendor (use --vendor "*" for every vendor)');
        for (const vendor of options.vendor)
          if (!VENDOR_PATTERN.test(vendor)) usage(`--vendor ${JSON.stringify(vendor)} is not a vendor name, a pattern with *, or *`);
        const id = options.id ?? `token-${randomBytes(4).toString('hex')}`;
        if (!TOKEN_ID_PATTERN.test(id)) usage(`--id ${JSON.stringify(id)} must be 1-64 of [A-Za-z0-9_.-]`);
        const entries = await readEntries(path, true);
        if (entries.some((entry) => entry.id === id))
          usage(`a token with id ${id} already exists in ${path} (revoke it, or choose another --id)`);
        const { secret, entry } = mintToken({ id, vendors: options.vendor, admin: options.admin, nowMs: io.nowMs() });
        await writeFileAtomic(path, serializeTokensFile([...entries, entry]), { mode: 0o600 });
        io.stdout(`${secret}\n`);
        io.stderr(
          `token ${id} added to ${path} (vendors: ${options.vendor.join(', ')}${options.admin ? '; admin' : ''}); the secret above is shown only once\n`,
        );
      })();
    });

  program
    .command('revoke')
    .description('mark a token revoked; the running primary refuses it within a second')
    .option(...fileOption)
    .requiredOption('--id <id>', 'the token to revoke')
    .action((options: { tokensFile?: string; id: string }) => {
      action = (async () => {
        const path = tokensFileOf(options, env);
        const entries = await readEntries(path, false);
        if (!entries.some((entry) => entry.id === options.id)) usage(`no token with id ${options.id} in ${path}`);
        await writeFileAtomic(
          path,
          serializeTokensFile(entries.map((entry) => (entry.id === options.id ? { ...entry, revoked: true } : entry))),
          { mode: 0o600 },
        );
        io.stderr(`token ${options.id} revoked in ${path}\n`);
      })();
    });

  program
    .command('list')
    .description('list the tokens (never their secrets)')
    .option(...fileOption)
    .action((options: { tokensFile?: string }) => {
      action = (async () => {
        const path = tokensFileOf(options, env);
        for (const entry of await readEntries(path, false)) {
          io.stdout(
            `${entry.id}\tvendors=${entry.vendors.join(',')}\tadmin=${entry.admin}\trevoked=${entry.revoked}\tcreated=${entry.createdAt ?? '-'}\n`,
          );
        }
      })();
    });

  try {
    program.parse([...argv], { from: 'user' });
    if (action === undefined) usage('expected a subcommand: create, revoke or list (see --help)');
    await action;
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof Error && 'code' in err && (err.code === 'METASYNC_ERR_CLI_USAGE' || err.code === 'METASYNC_ERR_CONFIG_INVALID')) {
      io.stderr(`${String(err.code)}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
