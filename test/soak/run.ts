/**
 * `pnpm soak [--duration-ms N] [--warmup-ms N] [--seed N] ...`: the long run of
 * issue 5. Spawns the BUILT bins (run `pnpm build` first), prints progress and
 * the report, and exits 1 when a target fails (2 on a harness error).
 */
import { parseArgs } from 'node:util';
import { readMachineInfo } from '../helpers/proc-stats.js';
import { evaluateTargets, formatReport, poolSocketWidth } from './report.js';
import { DEFAULT_SOAK_OPTIONS, runSoak, type SoakOptions } from './soak.js';

const NUMERIC_FLAGS = {
  'duration-ms': 'durationMs',
  'warmup-ms': 'warmupMs',
  mirrors: 'mirrors',
  'faulted-mirrors': 'faultedMirrors',
  workers: 'workers',
  'pause-ms': 'pauseMs',
  'publish-interval-ms': 'publishIntervalMs',
  'fault-phase-ms': 'faultPhaseMs',
  'initial-packages': 'initialPackages',
  'max-packages': 'maxPackages',
  'pad-bytes': 'padBytes',
  'settle-ms': 'settleMs',
  'proxy-timeout-ms': 'proxyTimeoutMs',
  'hot-cache-bytes': 'hotCacheBytes',
  seed: 'seed',
  'rss-growth-pct': 'rssGrowthPct',
  'fd-growth': 'fdGrowth',
  'socket-growth': 'socketGrowth',
} as const;

function usage(): string {
  return `usage: pnpm soak [options]\n${Object.keys(NUMERIC_FLAGS)
    .map((flag) => `  --${flag} <n>`)
    .join(
      '\n',
    )}\n  --kept-fleet <dir>  restart the fleet a publish-visible bench kept in --work-dir <dir> (e.g. a million paths)\ndefaults: duration 600000 ms (warm-up 60000 ms unless given: 10% of the duration, at least 10 s), RSS growth limit 10%, non-socket descriptor growth limit 0, socket growth limit: the pools' width (${poolSocketWidth(DEFAULT_SOAK_OPTIONS.workers)} with the default workers)`;
}

async function main(): Promise<number> {
  // `pnpm soak -- --flag` passes the `--` on, as `pnpm bench -- ...` does: dropped, not read as the end of the options.
  const argv = process.argv.slice(2);
  const { values } = parseArgs({
    args: argv[0] === '--' ? argv.slice(1) : argv,
    options: {
      ...Object.fromEntries(Object.keys(NUMERIC_FLAGS).map((flag) => [flag, { type: 'string' as const }])),
      'kept-fleet': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help === true) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  const numbers: Record<string, number> = {};
  for (const [flag, key] of Object.entries(NUMERIC_FLAGS)) {
    const raw = (values as Record<string, string | undefined>)[flag];
    if (raw === undefined) continue;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${flag} must be a non-negative number, got ${JSON.stringify(raw)}`);
    numbers[key] = value;
  }
  const {
    rssGrowthPct = 10,
    fdGrowth = 0,
    socketGrowth = poolSocketWidth(numbers.workers ?? DEFAULT_SOAK_OPTIONS.workers),
    ...soakNumbers
  } = numbers;
  const durationMs = soakNumbers.durationMs ?? DEFAULT_SOAK_OPTIONS.durationMs;
  const options: Partial<SoakOptions> = {
    warmupMs: Math.max(10_000, Math.min(60_000, Math.round(durationMs / 10))),
    ...soakNumbers,
    keptFleetDir: values['kept-fleet'],
    progress: (line) => process.stdout.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${line}\n`),
  };
  const machine = readMachineInfo();
  process.stdout.write(
    `[soak] ${machine.cores} cores (${machine.cpuModel}), ${(machine.ramBytes / 2 ** 30).toFixed(1)} GiB, node ${machine.node}, load ${machine.loadAverage1m}\n`,
  );
  const result = await runSoak(options);
  const verdicts = evaluateTargets(result, { rssGrowthPct, fdGrowth, socketGrowth });
  process.stdout.write(`${formatReport(result, verdicts)}\n`);
  process.stdout.write(`[soak] load average at the end: ${readMachineInfo().loadAverage1m}\n`);
  return verdicts.every((v) => v.pass) ? 0 : 1;
}

// Interrupted: exit, and the daemon helper kills what the soak started (test/helpers/daemon.ts).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`soak interrupted by ${signal}: stopping its daemons\n`);
    process.exit(130);
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak harness failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);
