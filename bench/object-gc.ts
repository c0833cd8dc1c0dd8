/**
 * `node --conditions=source --import tsx bench/object-gc.ts [paths]` (default 20,000): measures the
 * primary's local object GC in process (not part of `pnpm bench`'s table: it has
 * no baseline to beat). It publishes `paths` p2 files of ~8 KB, supersedes every
 * one, moves the journal window and snapshots past them, then runs the GC with
 * its default bounds (32 of 256 shards, <= 5,000 deletes a run) while a
 * publisher keeps ~20 publishes/s going, and prints: objects deleted, bytes
 * freed, du of objects/ before and after, per-run duration, event-loop delay,
 * and publish latency with the GC running against the same load without it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createObjectGc, openPrimaryCore, type ObjectGcRun, type PrimaryCore } from '@metasync/primary';
import { createLogger } from '@metasync/shared/daemon';

const PATHS = Number(process.argv[2] ?? 20_000);
const BATCH = 5_000;
const log = createLogger({ name: 'object-gc-bench', level: 'silent' });
const content = (k: number, v: number) =>
  Buffer.from(JSON.stringify({ packages: { [`v/p${k}`]: [{ version: `${v}.0.0`, pad: 'x'.repeat(8_000) }] } }));
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;

async function publishAll(core: PrimaryCore, v: number): Promise<void> {
  for (let start = 0; start < PATHS; start += BATCH) {
    const changes = [];
    for (let k = start; k < Math.min(PATHS, start + BATCH); k++) changes.push({ path: `p2/v/p${k}.json`, content: content(k, v) });
    await core.publisher.submit(changes, 'api');
  }
}

/** ~20 publishes/s of single paths until `until` settles; returns each submit's latency (ms). */
async function steadyPublishes(core: PrimaryCore, until: Promise<unknown>, versionBase: number): Promise<number[]> {
  let done = false;
  void until.finally(() => (done = true));
  const latencies: number[] = [];
  for (let i = 0; !done && i < 100_000; i++) {
    const started = performance.now();
    await core.publisher.submit([{ path: `p2/v/p${i % PATHS}.json`, content: content(i % PATHS, versionBase + i) }], 'api');
    latencies.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return latencies.sort((a, b) => a - b);
}

const dataDir = await mkdtemp(join(tmpdir(), 'metasync-object-gc-bench-'));
try {
  const core = await openPrimaryCore({
    dataDir,
    signingKeyFile: undefined,
    keepGenerations: 10,
    snapshotEveryGenerations: 1e9,
    snapshotIntervalMs: 3_600_000,
    log,
  });
  await publishAll(core, 1);
  await publishAll(core, 2);
  // Past the 10-generation window and the three kept snapshots: version 1 is garbage.
  for (let i = 0; i < 12; i++) await core.publisher.submit([{ path: 'p2/v/window.json', content: content(-1, i) }], 'api');
  for (let i = 0; i < 3; i++) {
    await core.publisher.submit([{ path: 'p2/v/snap.json', content: content(-2, i) }], 'api');
    await core.snapshots.take();
  }
  const du = () =>
    execFileSync('du', ['-sm', join(dataDir, 'objects')])
      .toString()
      .split('\t')[0];
  const duBefore = du();
  const baseline = await steadyPublishes(core, new Promise((resolve) => setTimeout(resolve, 15_000)), 1_000_000);

  let clockMs = 0;
  const gc = createObjectGc({
    publisher: core.publisher,
    manifest: core.manifest,
    snapshotDir: join(dataDir, 'snapshots'),
    graceMs: 1,
    intervalMs: 0,
    log,
    now: () => clockMs,
  });
  const runs: ObjectGcRun[] = [];
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const collecting = (async () => {
    // Two full passes: the first sighting starts each clock, the second deletes.
    for (let run = 0; run < 16; run++) {
      runs.push(await gc.runOnce());
      clockMs += 10;
    }
  })();
  const during = await steadyPublishes(core, collecting, 2_000_000);
  await collecting;
  delay.disable();
  await gc.close();
  let missing = 0;
  for (const entry of core.manifest.values()) if (!(await core.publisher.store.has(entry.sha256))) missing++;
  await core.close();

  const durations = runs.map((run) => run.durationMs).sort((a, b) => a - b);
  console.log(`object GC, ${PATHS} paths superseded once (~8 KB each), load average ${loadavg()[0]?.toFixed(1)} on this machine`);
  console.log(
    `  deleted ${runs.reduce((sum, run) => sum + run.deleted, 0)} objects, freed ${(runs.reduce((sum, run) => sum + run.bytesFreed, 0) / 2 ** 20).toFixed(0)} MiB (file bytes); du objects/ ${duBefore} -> ${du()} MiB`,
  );
  console.log(
    `  ${runs.length} runs: duration p50 ${percentile(durations, 0.5)} ms, max ${durations.at(-1)} ms; event-loop delay p99 ${(delay.percentile(99) / 1e6).toFixed(0)} ms, max ${(delay.max / 1e6).toFixed(0)} ms`,
  );
  console.log(
    `  publish latency without GC: p50 ${percentile(baseline, 0.5).toFixed(1)} ms, p99 ${percentile(baseline, 0.99).toFixed(1)} ms (n=${baseline.length})`,
  );
  console.log(
    `  publish latency during GC:  p50 ${percentile(during, 0.5).toFixed(1)} ms, p99 ${percentile(during, 0.99).toFixed(1)} ms (n=${during.length})`,
  );
  console.log(`  head objects missing after GC: ${missing}`);
} finally {
  await rm(dataDir, { recursive: true, force: true });
}
