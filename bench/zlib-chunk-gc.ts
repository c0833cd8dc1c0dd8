/**
 * `node bench/zlib-chunk-gc.ts`
 *
 * Why one-shot zlib calls size their output chunk (packages/shared/src/runtime/zlib-chunk.ts): with a
 * live heap like a bootstrap's (100,000 snapshot entries), decode or compress 100,000 small p2-like
 * objects with Node's default chunk and with a chunk sized to the output, and count the full (major)
 * and young (minor) collections each way. Each full collection marks the whole live heap.
 */
import { createHash } from 'node:crypto';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { gunzipSync, gzipSync } from 'node:zlib';

const COUNT = 100_000;
const live = Array.from({ length: COUNT }, (_, i) => ({
  path: `p2/vendor${i % 5000}/package${i}.json`,
  sha256: createHash('sha256').update(String(i)).digest('hex'),
  size: i,
  mtime: i,
}));
const raw = Buffer.from(
  JSON.stringify({ packages: { 'acme/x': Array.from({ length: 40 }, (_, i) => ({ version: `1.${i}.0`, require: { php: '>=7' } })) } }),
);
const gz = gzipSync(raw);

const runs: Record<string, () => Buffer> = {
  'gunzip, default chunk': () => gunzipSync(gz, { maxOutputLength: raw.length + 1 }),
  'gunzip, sized chunk': () => gunzipSync(gz, { maxOutputLength: raw.length + 1, chunkSize: raw.length + 1 }),
  'gzip -9, default chunk': () => gzipSync(raw, { level: 9 }),
  'gzip -9, sized chunk': () => gzipSync(raw, { level: 9, chunkSize: raw.length }),
};

let major = 0;
let minor = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = (entry as { detail?: { kind: number } }).detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++;
    else if (kind === constants.NODE_PERFORMANCE_GC_MINOR) minor++;
  }
}).observe({ entryTypes: ['gc'] });

console.log(`${COUNT} objects of ${raw.length} bytes (${gz.length} gzipped), ${live.length} live entries`);
for (const [name, run] of Object.entries(runs)) {
  await new Promise((resolve) => setTimeout(resolve, 50));
  major = 0;
  minor = 0;
  const started = performance.now();
  const cpu = process.cpuUsage();
  for (let i = 0; i < COUNT; i++) createHash('sha256').update(run()).digest();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const used = process.cpuUsage(cpu);
  console.log(
    `${name.padEnd(24)} ${String(Math.round(performance.now() - started)).padStart(6)} ms wall ${String(Math.round((used.user + used.system) / 1000)).padStart(6)} ms CPU  full GCs ${String(major).padStart(3)}  young GCs ${minor}`,
  );
}
