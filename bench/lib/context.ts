import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Daemon } from '../../test/helpers/daemon.js';
import { readChildRssBytes, readProcCpuMs, readProcMemory, type ProcMemory } from '../../test/helpers/proc-stats.js';
import { runRsync } from '../../test/helpers/rsync.js';
import { buildCorpusTree, cachedCorpusTree, type CorpusTree } from './corpus.js';
import type { CpuPlan } from './cpu.js';
import {
  readPrimaryState,
  startMirror,
  startPrimary,
  waitForIngest,
  waitForMirrorSeq,
  waitForStartupReconcile,
  type PrimaryState,
} from './fleet.js';
import type { BenchOptions } from './options.js';
import { elapsedMs, nowNs } from './stats.js';

export interface BenchContext {
  options: BenchOptions;
  workDir: string;
  cpu: CpuPlan;
  /** Progress on stderr; the report goes to stdout. */
  log(message: string): void;
  /** Registers a stop function run (last first) when the run ends, even on failure. */
  defer(stop: () => Promise<void>): void;
  large: LargeFixture;
  observations: Observations;
}

/** Figures one bench takes that another reports (e.g. RSS after the serve bench warmed the cache). */
export interface Observations {
  mirrorMemoryAfterServe?: ProcMemory;
  nginxWorkerMemoryAfterServe?: ProcMemory;
}

export interface IngestedPrimary {
  /** The running process and its URL: replaced by restartPrimary(). */
  daemon: Daemon;
  url: string;
  sourceDir: string;
  publishToken: string;
  /** Head once the tree was ingested. */
  head: PrimaryState;
  /** From spawning the primary to the commit of the last ingest generation. */
  ingestMs: number;
  /** CPU time (user + system) the primary used until then: steadier than wall time on a loaded machine. */
  ingestCpuMs: number;
  /** Read the moment the ingest's last generation is served; its peak is the process's high-water mark until then. */
  memoryAtIngest: ProcMemory;
}

export interface RestartedPrimary {
  /** From spawning the process on the ingested data dir to it listening. */
  listeningMs: number;
  /** From spawning to the start-up reconcile of the tree being committed (/status/data.json). */
  reconciledMs: number;
  /** CPU time (user + system) until reconciled. */
  cpuMs: number;
  memory: ProcMemory;
  /** RSS of its inotifywait child, which holds the source tree's watches (0 with fs.watch). */
  watcherRssBytes: number;
  /** Files the reconcile read (the stat cache vouched for the rest). */
  filesRead: number;
}

export interface BootstrappedMirror {
  daemon: Daemon;
  url: string;
  dataDir: string;
  /** From spawning the mirror (empty data dir) to it serving the primary's head. */
  bootstrapMs: number;
  /** CPU time (user + system) the mirror used until then. */
  bootstrapCpuMs: number;
  /** Sampled the moment the head is served: bootstrap's temporary data still resident. */
  memoryAtBootstrap: ProcMemory;
  /** Sampled --settle-seconds later, once the mirror's post-apply collection ran: what it keeps. */
  memoryAfterBootstrap: ProcMemory;
}

export interface RsyncCopies {
  /** `rsync -a source/ a/` into an empty directory. */
  coldCopyMs: number;
  /** `rsync -a a/ b/` into an empty directory, a second cold sample. */
  secondColdCopyMs: number;
  dirA: string;
  dirB: string;
}

/**
 * The large corpus and the daemons built on it, created on first use and
 * shared: with `--only serve` the serve bench still needs an ingested primary
 * and a bootstrapped mirror, and with all benches they are built once.
 */
export interface LargeFixture {
  corpus(): Promise<CorpusTree & { writeMs: number }>;
  rsyncCopies(): Promise<RsyncCopies>;
  primary(): Promise<IngestedPrimary>;
  mirror(): Promise<BootstrappedMirror>;
  stopMirror(): Promise<void>;
  /** Stops the ingested primary (SIGTERM) and starts it again on its data dir (on a new port: primary().url follows). */
  restartPrimary(): Promise<RestartedPrimary>;
}

function once<T>(build: () => Promise<T>): { get: () => Promise<T>; peek: () => Promise<T> | undefined; reset: () => void } {
  let promise: Promise<T> | undefined;
  return { get: () => (promise ??= build()), peek: () => promise, reset: () => (promise = undefined) };
}

export function createLargeFixture(ctx: Omit<BenchContext, 'large'>): LargeFixture {
  const root = join(ctx.workDir, 'large');
  const corpus = once(async () => {
    const { paths, seed, corpusCache } = ctx.options;
    ctx.log(
      corpusCache === undefined ? `writing a ${paths}-path corpus` : `${paths}-path corpus from ${corpusCache} (written there if absent)`,
    );
    const startedNs = nowNs();
    const tree =
      corpusCache === undefined
        ? await buildCorpusTree({ dir: join(root, 'source'), paths, seed })
        : await cachedCorpusTree({ cacheDir: corpusCache, paths, seed });
    const writeMs = elapsedMs(startedNs);
    ctx.log(`corpus: ${tree.paths.length} paths, ${(tree.bytes / 1e6).toFixed(1)} MB in ${(writeMs / 1000).toFixed(1)} s`);
    return { ...tree, writeMs };
  });
  const rsyncCopies = once(async () => {
    const tree = await corpus.get();
    const dirA = join(root, 'rsync-a');
    const dirB = join(root, 'rsync-b');
    ctx.log('rsync -a cold copies');
    // With --corpus-cache the corpus lives elsewhere and nothing else has made this run's directory yet.
    await mkdir(root, { recursive: true });
    const first = await runRsync({ src: tree.dir, dst: dirA });
    const second = await runRsync({ src: dirA, dst: dirB });
    return { coldCopyMs: first.durationMs, secondColdCopyMs: second.durationMs, dirA, dirB };
  });
  const primary = once(async () => {
    const tree = await corpus.get();
    const publishToken = randomBytes(24).toString('hex');
    ctx.log('starting the primary on the corpus');
    const spawnedAtMs = Date.now();
    const daemon = await startPrimary({
      sourceDir: tree.dir,
      dataDir: join(root, 'primary-data'),
      publishToken,
      readyTimeoutMs: 30 * 60_000,
      malloc: ctx.options.malloc,
    });
    ctx.defer(() => daemon.stop());
    const head = await waitForIngest({ primaryUrl: daemon.url, paths: tree.paths, timeoutMs: 60 * 60_000 });
    const ingestMs = head.time - spawnedAtMs;
    if (daemon.child.pid === undefined) throw new Error('primary process has no pid');
    const ingestCpuMs = await readProcCpuMs(daemon.child.pid);
    const memoryAtIngest = await readProcMemory(daemon.child.pid);
    ctx.log(
      `primary ingested ${tree.paths.length} paths at seq ${head.seq} in ${(ingestMs / 1000).toFixed(1)} s (${(ingestCpuMs / 1000).toFixed(1)} s CPU)`,
    );
    return { daemon, url: daemon.url, sourceDir: tree.dir, publishToken, head, ingestMs, ingestCpuMs, memoryAtIngest };
  });
  const mirror = once(async () => {
    const ingested = await primary.get();
    const head = await readPrimaryState(ingested.url);
    ctx.log(`starting a cold mirror (primary head ${head.seq})`);
    const startedNs = nowNs();
    const dataDir = join(root, 'mirror-data');
    const daemon = await startMirror({
      primaryUrl: ingested.url,
      dataDir,
      hotCacheMib: ctx.options.hotCacheMib,
      malloc: ctx.options.malloc,
      publishToken: ingested.publishToken,
      mirrorId: 'bench-mirror',
      readyTimeoutMs: 60 * 60_000,
    });
    ctx.defer(() => daemon.stop());
    await waitForMirrorSeq({ mirrorUrl: daemon.url, seq: head.seq, timeoutMs: 60 * 60_000, intervalMs: 50, logs: daemon.logs });
    const bootstrapMs = elapsedMs(startedNs);
    const pid = daemon.child.pid;
    if (pid === undefined) throw new Error('mirror process has no pid');
    const bootstrapCpuMs = await readProcCpuMs(pid);
    const memoryAtBootstrap = await readProcMemory(pid);
    // The mirror runs a full collection when a bulk apply commits and one 1 s later (memory-release.ts); V8
    // gives the freed pages back some seconds after that (at 100k paths: 398 MB 5 s after the head, 203 MB at 20 s).
    await new Promise((resolve) => setTimeout(resolve, ctx.options.settleSeconds * 1000));
    const memoryAfterBootstrap = await readProcMemory(pid);
    const mib = (memory: ProcMemory): string => `${(memory.rssBytes / 2 ** 20).toFixed(0)} MiB`;
    ctx.log(
      `mirror bootstrapped in ${(bootstrapMs / 1000).toFixed(1)} s (${(bootstrapCpuMs / 1000).toFixed(1)} s CPU), RSS ${mib(memoryAtBootstrap)} then ${mib(memoryAfterBootstrap)} ${ctx.options.settleSeconds} s later`,
    );
    return { daemon, url: daemon.url, dataDir, bootstrapMs, bootstrapCpuMs, memoryAtBootstrap, memoryAfterBootstrap };
  });
  return {
    corpus: corpus.get,
    rsyncCopies: rsyncCopies.get,
    primary: primary.get,
    mirror: mirror.get,
    async stopMirror() {
      const running = mirror.peek();
      if (running === undefined) return;
      mirror.reset();
      await (await running).daemon.stop();
    },
    async restartPrimary() {
      const ingested = await primary.get();
      await ingested.daemon.stop(5 * 60_000);
      const spawnedNs = nowNs();
      const daemon = await startPrimary({
        sourceDir: ingested.sourceDir,
        dataDir: join(root, 'primary-data'),
        publishToken: ingested.publishToken,
        readyTimeoutMs: 30 * 60_000,
        malloc: ctx.options.malloc,
      });
      ctx.defer(() => daemon.stop());
      // A new port: the old one may have gone to another process meanwhile. Mirrors start after this bench.
      ingested.daemon = daemon;
      ingested.url = daemon.url;
      const listeningMs = elapsedMs(spawnedNs);
      const finished = await waitForStartupReconcile(ingested.url, 30 * 60_000);
      const reconciledMs = elapsedMs(spawnedNs);
      const pid = daemon.child.pid;
      if (pid === undefined) throw new Error('primary process has no pid');
      return {
        listeningMs,
        reconciledMs,
        cpuMs: await readProcCpuMs(pid),
        memory: await readProcMemory(pid),
        watcherRssBytes: await readChildRssBytes(pid, 'inotifywait'),
        filesRead: finished.filesRead,
      };
    },
  };
}
