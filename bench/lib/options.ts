import { parseArgs } from 'node:util';

export const BENCH_IDS = [
  'ingest',
  'restart',
  'bootstrap',
  'apply-one',
  'serve',
  'mirror-rss',
  'publish-api',
  'publish-visible',
  'dists',
] as const;
export type BenchId = (typeof BENCH_IDS)[number];

export interface BenchOptions {
  /** Paths in the large corpus (ingest, bootstrap, apply-one, serve, mirror-rss). */
  paths: number;
  /** Paths in the publish-visible fleet's corpus (a small repository: the figure is about latency). */
  fleetPaths: number;
  /** The publish-visible fleet's corpus seed (default seed + 1: another repository than the large one). */
  fleetSeed: number;
  /** Trees the fleet's rsync baseline keeps (default: one per mirror); fewer are each synced in turn, mirrors rsyncs a round. */
  fleetRsyncTrees: number;
  mirrors: number;
  publishRatePerSec: number;
  publishes: number;
  /** publish-visible: probe interval per mirror while a publish is pending (the mirror's log is the other evidence). */
  pollIntervalMs: number;
  wrkSeconds: number;
  wrkWarmupSeconds: number;
  connections: number;
  wrkThreads: number;
  /** Alternating wrk rounds per server in the serve bench; the best round of each is reported. */
  serveRounds: number;
  /** Publish API throughput: concurrent clients and total requests. */
  publishClients: number;
  publishRequests: number;
  /** apply-one: how many single-file changes (and rsync runs) to take the median of. */
  applyRounds: number;
  /** Mirror hot-cache budget (MiB) passed to the mirror as --hot-cache-bytes; RSS is judged beyond it. */
  hotCacheMib: number;
  /** Wait after bootstrap before the mirror's memory is sampled as kept (V8 returns freed pages seconds after a collection). */
  settleSeconds: number;
  /** Pin servers and load generator to separate cores (taskset), when there are at least 2. */
  pin: boolean;
  /** The daemons' malloc: jemalloc as the systemd units preload it, or glibc's (--glibc-malloc). */
  malloc: 'jemalloc' | 'glibc';
  only: BenchId[];
  seed: number;
  workDir: string | undefined;
  /**
   * publish-visible only: restart the fleet a previous run kept in --work-dir (its primary and mirror data dirs)
   * instead of building one. At 1M paths building it takes hours; a kept fleet is steady (no bootstrap's brotli work).
   */
  reuseFleet: boolean;
  /** Where the large corpus is kept between runs (built once per paths and seed), instead of inside the work dir. */
  corpusCache: string | undefined;
  keep: boolean;
  out: string | undefined;
}

const HELP = `pnpm bench [-- options]   (every option also reads METASYNC_BENCH_<NAME>, e.g. METASYNC_BENCH_PATHS)
  --paths N              large corpus paths (default 100000)
  --fleet-paths N        publish-visible fleet corpus paths (default 1000)
  --fleet-seed N         publish-visible fleet corpus seed (default seed + 1; with --corpus-cache the fleet
                         corpus is cached too, so --fleet-seed equal to --seed reuses the large corpus)
  --fleet-rsync-trees N  rsync baseline target trees (default --mirrors; fewer saves a full copy each at 1M:
                         each round still runs one rsync per mirror, cycling over the trees)
  --mirrors N            mirrors in the publish-visible fleet (default 5)
  --publish-rate N       publishes per second (default 20)
  --publishes N          publishes measured (default 400)
  --poll-interval-ms N   publish-visible: HEAD probe interval per mirror, beside its log (default 20)
  --wrk-seconds N        measured wrk run per server (default 10)
  --wrk-warmup-seconds N warm-up run per server (default 2)
  --connections N        wrk connections (default 64)
  --wrk-threads N        wrk threads (default 1)
  --serve-rounds N       alternating wrk rounds per server, best reported (default 2)
  --publish-clients N    concurrent publish API clients (default 16)
  --publish-requests N   publish API requests (default 2000)
  --apply-rounds N       single-file changes measured (default 5)
  --hot-cache-mib N      mirror hot-cache budget, MiB (default 64, the mirror's default)
  --settle-seconds N     wait after bootstrap before sampling the mirror's kept memory (default 20)
  --no-pin               do not pin servers and wrk to separate cores
  --glibc-malloc         run the primary and mirrors on glibc's malloc (default: jemalloc preloaded, as the systemd units do)
  --only a,b             run only these: ${BENCH_IDS.join(', ')}
  --seed N               corpus and path-choice seed (default 1)
  --work-dir DIR         scratch directory, empty or absent; kept afterwards (default: a new temp dir, removed)
  --reuse-fleet          with --only publish-visible: restart the fleet a run kept in --work-dir instead of
                         building one (the work dir may then be non-empty; a missing mirror data dir bootstraps)
  --corpus-cache DIR     keep the large corpus in DIR/<paths>-<seed>/ and reuse it in later runs (at 1M paths
                         writing it takes ~15 min); never modified by the benches
  --keep                 keep the scratch directory
  --out FILE             result JSON (default bench/results/<timestamp>.json)`;

export function parseBenchOptions(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): { help: true; text: string } | { help: false; options: BenchOptions } {
  const args = argv[0] === '--' ? argv.slice(1) : [...argv];
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      paths: { type: 'string' },
      'fleet-paths': { type: 'string' },
      'fleet-seed': { type: 'string' },
      'fleet-rsync-trees': { type: 'string' },
      mirrors: { type: 'string' },
      'publish-rate': { type: 'string' },
      publishes: { type: 'string' },
      'poll-interval-ms': { type: 'string' },
      'wrk-seconds': { type: 'string' },
      'wrk-warmup-seconds': { type: 'string' },
      connections: { type: 'string' },
      'wrk-threads': { type: 'string' },
      'serve-rounds': { type: 'string' },
      'publish-clients': { type: 'string' },
      'publish-requests': { type: 'string' },
      'apply-rounds': { type: 'string' },
      'hot-cache-mib': { type: 'string' },
      'settle-seconds': { type: 'string' },
      'no-pin': { type: 'boolean' },
      'glibc-malloc': { type: 'boolean' },
      only: { type: 'string' },
      seed: { type: 'string' },
      'work-dir': { type: 'string' },
      'corpus-cache': { type: 'string' },
      'reuse-fleet': { type: 'boolean' },
      keep: { type: 'boolean' },
      out: { type: 'string' },
    },
  });
  if (values.help === true) return { help: true, text: HELP };
  const read = (name: keyof typeof values): string | undefined => {
    const fromArgv = values[name];
    if (typeof fromArgv === 'string') return fromArgv;
    const fromEnv = env[`METASYNC_BENCH_${String(name).toUpperCase().replaceAll('-', '_')}`];
    return fromEnv === '' ? undefined : fromEnv;
  };
  const problems: string[] = [];
  const int = (name: keyof typeof values, fallback: number, min: number): number => {
    const text = read(name);
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isInteger(value) || value < min)
      problems.push(`--${String(name)}: expected an integer >= ${min}, got ${JSON.stringify(text)}`);
    return value;
  };
  const onlyText = read('only');
  const only =
    onlyText === undefined
      ? [...BENCH_IDS]
      : onlyText
          .split(',')
          .map((id) => id.trim())
          .filter((id) => id !== '');
  for (const id of only)
    if (!(BENCH_IDS as readonly string[]).includes(id))
      problems.push(`--only: unknown bench ${JSON.stringify(id)}, expected one of ${BENCH_IDS.join(', ')}`);
  const seed = int('seed', 1, 0);
  const mirrors = int('mirrors', 5, 1);
  const options: BenchOptions = {
    paths: int('paths', 100_000, 10),
    fleetPaths: int('fleet-paths', 1000, 10),
    fleetSeed: int('fleet-seed', seed + 1, 0),
    mirrors,
    fleetRsyncTrees: int('fleet-rsync-trees', mirrors, 1),
    publishRatePerSec: int('publish-rate', 20, 1),
    publishes: int('publishes', 400, 1),
    pollIntervalMs: int('poll-interval-ms', 20, 0),
    wrkSeconds: int('wrk-seconds', 10, 1),
    wrkWarmupSeconds: int('wrk-warmup-seconds', 2, 0),
    connections: int('connections', 64, 1),
    wrkThreads: int('wrk-threads', 1, 1),
    serveRounds: int('serve-rounds', 2, 1),
    publishClients: int('publish-clients', 16, 1),
    publishRequests: int('publish-requests', 2000, 1),
    applyRounds: int('apply-rounds', 5, 1),
    hotCacheMib: int('hot-cache-mib', 64, 0),
    settleSeconds: int('settle-seconds', 20, 0),
    pin: values['no-pin'] !== true && env.METASYNC_BENCH_NO_PIN !== '1',
    malloc: values['glibc-malloc'] === true || env.METASYNC_BENCH_GLIBC_MALLOC === '1' ? 'glibc' : 'jemalloc',
    only: only as BenchId[],
    seed,
    workDir: read('work-dir'),
    corpusCache: read('corpus-cache'),
    reuseFleet: values['reuse-fleet'] === true,
    keep: values.keep === true || env.METASYNC_BENCH_KEEP === '1',
    out: read('out'),
  };
  if (options.fleetRsyncTrees > options.mirrors) problems.push(`--fleet-rsync-trees: at most --mirrors (${options.mirrors})`);
  if (options.reuseFleet && (options.workDir === undefined || options.only.join() !== 'publish-visible')) {
    problems.push('--reuse-fleet: needs --work-dir and --only publish-visible (other benches measure cold starts)');
  }
  if (problems.length > 0) throw new Error(`invalid bench options: ${problems.join('; ')}`);
  return { help: false, options };
}
