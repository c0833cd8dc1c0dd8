/**
 * `node --conditions=source --import tsx bench/object-gc-pass.ts DATA_DIR [--snapshots N]`: the primary's
 * memory during one full object GC pass (8 runs of 32 shards, the daemon's defaults) over a kept primary data
 * dir, in process: RSS before, the peak while it runs (sampled every 20 ms), and after; per run its duration and
 * the V8 heap. DATA_DIR is a stopped primary's (`pnpm bench -- --paths 1000000 --only ingest --work-dir DIR`
 * keeps one in DIR/large/primary-data). Run it with jemalloc preloaded as the units do (LD_PRELOAD).
 *
 * `--snapshots N` first takes N snapshot files, each after a one-path publish (this changes the data dir), and
 * prints each take's RSS peak: the GC reads every snapshot file as roots, and a restarted primary has up to three.
 * Nothing is deleted: the grace is an hour and the clock does not move.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createObjectGc, openPrimaryCore } from '@metasync/primary';
import { createLogger } from '@metasync/shared/daemon';

const dataDir = process.argv[2];
if (dataDir === undefined || dataDir.startsWith('--')) throw new Error('usage: object-gc-pass.ts DATA_DIR [--snapshots N]');
const snapshotsAt = process.argv.indexOf('--snapshots');
const snapshots = snapshotsAt === -1 ? 0 : Number(process.argv[snapshotsAt + 1]);
const RUNS = 8;
const log = createLogger({ name: 'object-gc-pass', level: 'silent' });
const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) / 1024;
const heap = () => {
  const memory = process.memoryUsage();
  return `heap ${(memory.heapUsed / 2 ** 20).toFixed(0)} of ${(memory.heapTotal / 2 ** 20).toFixed(0)} MiB, external ${(memory.external / 2 ** 20).toFixed(0)} MiB`;
};
const settle = () => new Promise((resolve) => setTimeout(resolve, 5_000));

/** Runs `work` with RSS sampled every 20 ms; returns the peak and what work returned. */
async function sampled<T>(work: () => Promise<T>): Promise<{ peak: number; result: T }> {
  let peak = rssMb();
  const sampler = setInterval(() => (peak = Math.max(peak, rssMb())), 20);
  try {
    const result = await work();
    return { peak: Math.max(peak, rssMb()), result };
  } finally {
    clearInterval(sampler);
  }
}

const core = await openPrimaryCore({
  dataDir,
  signingKeyFile: undefined,
  keepGenerations: 1000,
  snapshotEveryGenerations: 1e9,
  snapshotIntervalMs: 3_600_000,
  log,
});
// The brotli backfill a fresh ingest owes would run beside the pass and blur it.
await core.brotliBackfill.close();
await settle();
for (let take = 0; take < snapshots; take++) {
  const content = Buffer.from(JSON.stringify({ packages: { 'bench/gc-pass': [{ version: `${take}.0.0` }] } }));
  await core.publisher.submit([{ path: `p2/bench/gc-pass-${Date.now()}.json`, content }], 'api');
  const before = rssMb();
  const started = performance.now();
  const { peak } = await sampled(() => core.snapshots.take());
  console.log(
    `snapshot ${take + 1}: ${(performance.now() - started).toFixed(0)} ms, RSS ${before.toFixed(0)} -> peak ${peak.toFixed(0)} MiB (+${(peak - before).toFixed(0)}), ${rssMb().toFixed(0)} after`,
  );
}
if (snapshots > 0) await settle();

const gc = createObjectGc({
  publisher: core.publisher,
  manifest: core.manifest,
  snapshotDir: join(dataDir, 'snapshots'),
  graceMs: 3_600_000,
  intervalMs: 0,
  log,
});
const before = rssMb();
console.log(`before the pass: RSS ${before.toFixed(0)} MiB, ${heap()}`);
const started = performance.now();
const { peak, result: scanned } = await sampled(async () => {
  let objects = 0;
  for (let run = 1; run <= RUNS; run++) {
    const report = await gc.runOnce();
    objects += report.scanned;
    console.log(`  run ${run}: ${report.durationMs} ms, ${report.scanned} objects, RSS ${rssMb().toFixed(0)} MiB, ${heap()}`);
  }
  return objects;
});
console.log(
  `object GC pass: ${scanned} objects in ${RUNS} runs, ${(performance.now() - started).toFixed(0)} ms; RSS ${before.toFixed(0)} -> peak ${peak.toFixed(0)} MiB (+${(peak - before).toFixed(0)}), ${rssMb().toFixed(0)} after`,
);
await gc.close();
await core.close();
