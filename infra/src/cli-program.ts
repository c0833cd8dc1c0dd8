import { Command, CommanderError, Option } from 'commander';
import { MAX_KEY_OVERLAP_MS, metasyncError } from '@metasync/shared';
import { CLI_ENV, loadCliConfig, type MirrorConfig } from './cli-config.js';
import { runKeysList, runKeysRotate } from './commands/keys.js';
import { runMirrorRetire } from './commands/mirror-retire.js';
import { runMirrorUp } from './commands/mirror-up.js';
import { runMirrorsList } from './commands/mirrors-list.js';
import { runMirrorsRoll } from './commands/mirrors-roll.js';
import { runStatus } from './commands/status.js';
import { runVerify } from './commands/verify.js';
import type { CommandContext, Io } from './commands/context.js';
import type { LauncherKind } from './launch/launcher.js';
import { systemClock, type Clock } from '@metasync/dns';
import { describeFailure } from './cli-errors.js';
import { EXIT, EXIT_HELP } from './exit-codes.js';
import { withLaunchedMirrors } from './launch/launchers.js';
import { trustCa } from './remote.js';

export interface RunCliOptions {
  env: NodeJS.ProcessEnv;
  io: Io;
  clock?: Clock;
}

const ENV_HELP = `Environment (each overrides the config file):\n${Object.entries(CLI_ENV)
  .map(([name, text]) => `  ${name.padEnd(30)} ${text}`)
  .join('\n')}\n  AWS credentials come only from the standard AWS chain (AWS_PROFILE, AWS_ACCESS_KEY_ID..., SSO, instance role).`;

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw metasyncError('METASYNC_ERR_CLI_USAGE', `expected a positive integer, got ${JSON.stringify(value)}`, {});
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw metasyncError('METASYNC_ERR_CLI_USAGE', `expected a whole number of milliseconds (0 or more), got ${JSON.stringify(value)}`, {});
  return n;
}

/** Checked here too, so a too-long overlap is a usage error (exit 2) before anything is sent. */
function keyOverlapMs(value: string): number {
  const n = nonNegativeInt(value);
  if (n > MAX_KEY_OVERLAP_MS)
    throw metasyncError('METASYNC_ERR_CLI_USAGE', `--overlap-ms may be at most ${MAX_KEY_OVERLAP_MS} (90 days), got ${n}`, {});
  return n;
}

function mirrorOverrides(opts: Record<string, string | undefined>): Partial<MirrorConfig> {
  return {
    url: opts.url,
    region: opts.region,
    address: opts.address,
    healthUrl: opts.healthUrl,
    stopCommand: opts.stopCommand,
  } as Partial<MirrorConfig>;
}

/** Parses argv (without node and script), runs one command, and returns its exit code. Never exits. */
export async function runCli(argv: readonly string[], options: RunCliOptions): Promise<number> {
  const { io, env } = options;
  const clock = options.clock ?? systemClock;
  let exitCode: number = EXIT.ok;
  const program = new Command('metasync')
    .description("Operate metasync mirrors: list, bring up, retire, check and verify them; list and rotate the primary's signing keys.")
    .option('--config <file>', 'JSON config file [env: METASYNC_CONFIG]')
    .option('--primary <url>', 'primary base URL [env: METASYNC_PRIMARY]')
    .option('--ca <file>', 'PEM CA trusted besides the system CAs for https:// primaries and mirrors [env: METASYNC_CA_FILE]')
    .helpOption('-h, --help', 'show this help')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .addHelpText('after', `\n${EXIT_HELP}\n\n${ENV_HELP}`)
    .showHelpAfterError();
  const context = async (): Promise<CommandContext> => {
    const globals = program.opts<{ config?: string; primary?: string; ca?: string }>();
    const config = loadCliConfig({ configPath: globals.config, primary: globals.primary, caFile: globals.ca, env });
    if (config.ca !== undefined) trustCa(config.ca);
    return { config: await withLaunchedMirrors(config, clock), io, clock };
  };

  const mirrors = program.command('mirrors').description('commands over all mirrors');
  mirrors
    .command('list')
    .description('region, endpoint, applied seq, lag, health (live /health/fresh) and DNS state of every mirror')
    .option('--json', 'print JSON instead of a table')
    .action(async (opts: { json?: boolean }) => {
      exitCode = await runMirrorsList(await context(), { json: opts.json === true });
    });

  mirrors
    .command('roll')
    .description(
      'rolling replacement: per region, launch a mirror on --to, wait until it is fresh and in DNS, then retire the old one; stops at the first failure [needs METASYNC_PRIMARY_TOKEN]',
    )
    .requiredOption('--to <version>', 'release the new mirrors run')
    .addOption(new Option('--launch <provider>', 'the launcher whose mirrors are rolled').choices(['local', 'aws']).default('local'))
    .addOption(
      new Option('--timeout-ms <ms>', 'give up waiting for one new mirror after this long').argParser(positiveInt).default(600_000),
    )
    .addOption(new Option('--poll-ms <ms>', 'probe interval').argParser(positiveInt).default(1_000))
    .option('--force', 'retire old mirrors even when that leaves a region with no fresh mirror in DNS')
    .action(async (opts: { to: string; launch: string; timeoutMs: number; pollMs: number; force?: boolean }) => {
      exitCode = await runMirrorsRoll(await context(), {
        to: opts.to,
        launch: opts.launch as LauncherKind,
        timeoutMs: opts.timeoutMs,
        pollMs: opts.pollMs,
        force: opts.force === true,
      });
    });

  const mirror = program.command('mirror').description('commands over one mirror');
  const withMirrorFlags = (command: Command): Command =>
    command
      .argument('<mirror-id>', 'the mirror (as named in the config file and reported to the primary)')
      .option('--url <url>', "mirror's base URL (else from the config file)")
      .option('--region <region>', 'region (else from the config file)')
      .option('--address <ip>', 'address DNS answers carry (default: the URL host when it is an IP)')
      .option('--health-url <url>', 'freshness URL DNS checks (default: <url>/health/fresh)')
      .addOption(new Option('--timeout-ms <ms>', 'give up waiting after this long').argParser(positiveInt).default(600_000));
  withMirrorFlags(mirror.command('up'))
    .description(
      'optionally enroll it (--credential-file, --primary-key-file), wait (with progress) until the mirror is caught up and fresh, then register it in DNS',
    )
    .addOption(new Option('--poll-ms <ms>', 'probe interval').argParser(positiveInt).default(1_000))
    .option(
      '--credential-file <path>',
      "first enroll the mirror on the primary and write its credential here, 0600 (a rerun keeps one still enrolled; '-' prints it) [needs METASYNC_PRIMARY_TOKEN]",
    )
    .option('--primary-key-file <path>', "first write the primary's active key here, for the mirror's --primary-key-file")
    .addOption(
      new Option(
        '--launch <provider>',
        'first create the server: local = a mirror process on this host (enrolled and pinned for you)',
      ).choices(['local', 'aws']),
    )
    .option('--release <version>', "release the launched server runs (default: this CLI's version; others from launch.local.releases)")
    .action(async (mirrorId: string, opts: Record<string, string | undefined> & { timeoutMs: number; pollMs: number }) => {
      exitCode = await runMirrorUp(await context(), {
        mirrorId,
        overrides: mirrorOverrides(opts),
        timeoutMs: opts.timeoutMs,
        pollMs: opts.pollMs,
        credentialFile: opts.credentialFile,
        primaryKeyFile: opts.primaryKeyFile,
        launch: opts.launch as LauncherKind | undefined,
        release: opts.release,
      });
    });
  withMirrorFlags(mirror.command('retire'))
    .description(
      'DNS out, wait INSYNC and one TTL, stop the mirror (--stop-command), delete its health check, then revoke its credential [needs METASYNC_PRIMARY_TOKEN]',
    )
    .option(
      '--stop-command <cmd>',
      'shell command that stops the mirror (else from the config file; a launched mirror is destroyed by its launcher)',
    )
    .option('--force', 'retire even if it leaves its region, or the whole name, with no fresh mirror in DNS (exit 7 otherwise)')
    .addOption(
      new Option('--launch <provider>', 'the launcher that created it, when the config does not say (aws: found by its tags)').choices([
        'local',
        'aws',
      ]),
    )
    .action(async (mirrorId: string, opts: Record<string, string | undefined> & { timeoutMs: number; force?: boolean }) => {
      exitCode = await runMirrorRetire(await context(), {
        mirrorId,
        overrides: mirrorOverrides(opts),
        timeoutMs: opts.timeoutMs,
        force: opts.force === true,
        launch: opts.launch as LauncherKind | undefined,
      });
    });

  const keys = program.command('keys').description("the primary's signing keys");
  keys
    .command('list')
    .description('the active key and the retired keys still within their overlap, with the --primary-key value of each')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      exitCode = await runKeysList(await context(), { json: opts.json === true });
    });
  keys
    .command('rotate')
    .description(
      'rotate the signing key without a restart; running mirrors learn the new key during the overlap [needs METASYNC_PRIMARY_TOKEN]',
    )
    .addOption(
      new Option('--overlap-ms <ms>', 'how long the old key stays valid (longer than any mirror may be offline)')
        .argParser(keyOverlapMs)
        .default(86_400_000),
    )
    .option('--force', 'allow --overlap-ms 0 (every mirror must then be re-pinned by hand)')
    .option('--json', 'print JSON')
    .action(async (opts: { overlapMs: number; force?: boolean; json?: boolean }) => {
      exitCode = await runKeysRotate(await context(), { overlapMs: opts.overlapMs, force: opts.force === true, json: opts.json === true });
    });

  program
    .command('status')
    .description('the primary and every mirror at a glance (exit 1 unless all are healthy)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      exitCode = await runStatus(await context(), { json: opts.json === true });
    });

  program
    .command('verify')
    .description("compare a mirror's files with the primary's by sha256 and list the differences (exit 6 if any)")
    .argument('[mirror-id]', 'a mirror from the config file')
    .option('--url <url>', "mirror's base URL")
    .option('--data <dir>', "also hash the mirror's objects on disk in this data dir")
    .addOption(new Option('--concurrency <n>', 'parallel requests').argParser(positiveInt).default(16))
    .option('--json', 'print JSON')
    .action(async (mirrorId: string | undefined, opts: { url?: string; data?: string; json?: boolean; concurrency: number }) => {
      exitCode = await runVerify(await context(), {
        mirrorId,
        url: opts.url,
        dataDir: opts.data,
        json: opts.json === true,
        concurrency: opts.concurrency,
      });
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') return EXIT.ok;
      return EXIT.usage;
    }
    const failure = describeFailure(err);
    io.err(failure.text);
    return failure.exitCode;
  }
}
