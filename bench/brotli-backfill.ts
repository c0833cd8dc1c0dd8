/**
 * `node --conditions=source --import tsx bench/brotli-backfill.ts [objects] [dir] [max-queued]` (default 20,000,
 * a new temp dir, the backfill's own bound): how fast deferred brotli variants are made after a bulk ingest or
 * bootstrap. Puts `objects` p2-like objects with `deferBrotli` (gzip file only), syncs, then times the backfill
 * over all of them (the store's own chunks: read back, hash, compress, temp file, one durability barrier,
 * rename). Pass a `dir` on the file system you want to measure (`-` for a temp dir); it must be empty or absent
 * and is removed afterwards. A `max-queued` below `objects` drops the rest, which the sweep then finds by
 * listing the shard directories (as at a million paths, where 800,000 of a million are dropped). Then it times
 * store.verify of every object (gzip and brotli present), what a mirror pays before it reuses present objects.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBrotliBackfill, openObjectStore, variantsOf } from '@metasync/store';

const count = Number(process.argv[2] ?? 20_000);
const dir = process.argv[3] !== undefined && process.argv[3] !== '-' ? process.argv[3] : await mkdtemp(join(tmpdir(), 'brotli-backfill-'));
const maxQueued = process.argv[4] === undefined ? undefined : Number(process.argv[4]);

/** A p2-like document: most packages have a few versions, a few have hundreds (heavy-tailed sizes). */
function p2(i: number): Buffer {
  const versions = i % 97 === 0 ? 300 : 2 + (i % 11);
  const list = Array.from({ length: versions }, (_, v) => ({
    version: `${v}.${i % 7}.0`,
    require: { php: '>=8.1', [`vendor${i % 300}/lib${v % 13}`]: `^${v % 5}.0` },
    dist: { type: 'zip', url: `https://example.invalid/acme/p${i}/${v}.zip`, reference: `${i}${v}`.padStart(40, '0') },
    time: '2026-11-30T12:00:00+00:00',
  }));
  return Buffer.from(JSON.stringify({ packages: { [`acme/p${i}`]: list }, minified: 'composer/2.0' }));
}

const store = await openObjectStore({ dir });
const shas: string[] = [];
let bytes = 0;
const putStarted = performance.now();
for (let i = 0; i < count; i += 256) {
  const stored = await Promise.all(
    Array.from({ length: Math.min(256, count - i) }, (_, k) => {
      const raw = p2(i + k);
      bytes += raw.length;
      return store.put({ raw, deferBrotli: true });
    }),
  );
  for (const object of stored) shas.push(object.sha256);
}
await store.sync();
const putMs = performance.now() - putStarted;

let failures = 0;
const backfill = createBrotliBackfill({
  store,
  quietMs: 0,
  maxWaitMs: 0,
  onError: () => failures++,
  ...(maxQueued === undefined ? {} : { maxQueued }),
});
const started = performance.now();
const cpu = process.cpuUsage();
backfill.add(shas);
await backfill.idle();
const used = process.cpuUsage(cpu);
const ms = performance.now() - started;
await backfill.close();
console.log(
  `${count} objects (${(bytes / 1e6).toFixed(1)} MB raw) put in ${(putMs / 1000).toFixed(1)} s; ` +
    `brotli backfill ${(ms / 1000).toFixed(2)} s wall, ${((used.user + used.system) / 1000 / 1000).toFixed(2)} s CPU ` +
    `(${Math.round(count / (ms / 1000))} objects/s, ${(((used.user + used.system) / count) | 0).toString()} us CPU each), ` +
    `${failures} failed chunks; load ${loadavg()[0]?.toFixed(2)}`,
);
const made = (await Promise.all(shas.map((sha256) => variantsOf(store, sha256)))).filter((sizes) => sizes.brSize !== undefined).length;
console.log(
  `queue bound ${maxQueued ?? 'default'}: ${backfill.dropped()} dropped, ${backfill.sweeps()} sweep(s); ${made} of ${count} objects have a brotli variant`,
);
// What a mirror pays before it reuses objects it holds no bytes for (after a restart or a failed apply).
const verifyCpu = process.cpuUsage();
const verifyStarted = performance.now();
let intact = 0;
for (let i = 0; i < shas.length; i += 64)
  intact += (await Promise.all(shas.slice(i, i + 64).map((sha256) => store.verify(sha256)))).filter(Boolean).length;
const verifyUsed = process.cpuUsage(verifyCpu);
console.log(
  `store.verify of all ${count}: ${((performance.now() - verifyStarted) / 1000).toFixed(2)} s wall, ` +
    `${((verifyUsed.user + verifyUsed.system) / 1e6).toFixed(2)} s CPU; ${intact} intact`,
);
await rm(dir, { recursive: true, force: true });
