/**
 * `node --conditions=source --import tsx bench/index-memory.ts --paths 1000000 [--lookups 2000000] [--impl maps|compact]`
 *
 * Memory and lookup speed of the mirror's applied index (not part of `pnpm bench`'s
 * table: no baseline to beat). Each implementation runs in its own child process
 * (`--expose-gc`), fills an index with `paths` synthetic entries through the
 * mirror's own apply loop in 10,000-entry batches parsed from JSON (as a sync
 * does), collects twice, and prints process.memoryUsage() against the empty
 * process. Then it times lookups of random present paths, each a fresh string
 * sliced from a URL (as a request's path is, so no string hash is cached):
 *   maps     the index before the compact tables: Map<path, {sha256, size, mtime}> + Map<sha256, count>
 *   compact  IndexState (packages/mirror/src/index/index-state.ts)
 * and, in the compact child, the path table's find alone (no entry, no hex), to
 * show what making the sha256 hex per lookup costs.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { isDeletion, type ChangeEntry } from '@metasync/shared';
import { applyEntries, emptyIndex, orderRootLast, type IndexEntry } from '../packages/mirror/src/index/index-state.js';
import { createObjectTable, createPathTable } from '@metasync/shared/tables';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const PATHS = Number(args.get('paths') ?? 100_000);
const LOOKUPS = Number(args.get('lookups') ?? 2_000_000);
const BATCH = 10_000;
const impl = args.get('impl');

const pathAt = (i: number) => `p2/vendor-${(i * 7919) % Math.max(1, Math.floor(PATHS / 12))}/package-${i}${i % 4 === 3 ? '~dev' : ''}.json`;
const shaAt = (i: number) => createHash('sha256').update(`object-${i}`).digest('hex');

interface Index {
  apply(entries: ChangeEntry[]): void;
  lookup(path: string): IndexEntry | undefined;
}

/** The index as it was before the compact tables. */
function mapsIndex(): Index {
  const paths = new Map<string, IndexEntry>();
  const refs = new Map<string, number>();
  return {
    apply(entries) {
      for (const entry of orderRootLast(entries)) {
        const old = paths.get(entry.path);
        if (isDeletion(entry)) {
          if (old === undefined) continue;
          paths.delete(entry.path);
        } else {
          paths.set(entry.path, { sha256: entry.sha256, size: entry.size, mtime: entry.mtime });
          refs.set(entry.sha256, (refs.get(entry.sha256) ?? 0) + 1);
        }
        if (old !== undefined) {
          const count = (refs.get(old.sha256) ?? 1) - 1;
          if (count > 0) refs.set(old.sha256, count);
          else refs.delete(old.sha256);
        }
      }
    },
    lookup: (path) => paths.get(path),
  };
}

function compactIndex(): Index & { state: ReturnType<typeof emptyIndex> } {
  const state = emptyIndex();
  return { state, apply: (entries) => applyEntries(state, entries, Date.now()), lookup: (path) => state.lookup(path) };
}

const gc = (globalThis as { gc?: () => void }).gc;
function settle(): NodeJS.MemoryUsage {
  gc?.();
  gc?.();
  return process.memoryUsage();
}
const mb = (bytes: number) => Math.round((bytes / 1e6) * 10) / 10;

/** Wall time is at the mercy of a shared machine: CPU time (user + system) per lookup is reported beside it. */
function timeLookups(urls: string[], lookup: (path: string) => number): { perSecond: number; cpuNsPerLookup: number } {
  let sink = 0;
  for (let i = 0; i < Math.min(LOOKUPS, 200_000); i++) sink += lookup(urls[i % urls.length]!.slice(1)); // warm-up
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  for (let i = 0; i < LOOKUPS; i++) sink += lookup(urls[i % urls.length]!.slice(1));
  const ns = Number(process.hrtime.bigint() - started);
  const used = process.cpuUsage(cpu);
  if (sink === -1) console.log('unreachable');
  return { perSecond: Math.round(LOOKUPS / (ns / 1e9)), cpuNsPerLookup: Math.round(((used.user + used.system) * 1000) / LOOKUPS) };
}

function runChild(kind: 'maps' | 'compact'): void {
  const before = settle();
  const index = kind === 'maps' ? mapsIndex() : compactIndex();
  const started = performance.now();
  for (let start = 0; start < PATHS; start += BATCH) {
    const batch: object[] = [];
    for (let i = start; i < Math.min(PATHS, start + BATCH); i++)
      batch.push({ path: pathAt(i), sha256: shaAt(i), size: 1_000 + (i % 50_000), mtime: 1_765_000_000_000 + i });
    index.apply(JSON.parse(JSON.stringify(batch)) as ChangeEntry[]);
  }
  const fillMs = Math.round(performance.now() - started);
  const after = settle();
  const urls: string[] = [];
  for (let i = 0; i < 100_000; i++) urls.push(`/${pathAt(Math.floor(Math.random() * PATHS))}`);
  const lookups = timeLookups(urls, (path) => index.lookup(path)!.sha256.length);
  const result: Record<string, unknown> = {
    impl: kind,
    paths: PATHS,
    fillMs,
    rssMB: mb(after.rss),
    rssGrowthMB: mb(after.rss - before.rss),
    heapUsedMB: mb(after.heapUsed - before.heapUsed),
    heapTotalMB: mb(after.heapTotal - before.heapTotal),
    externalMB: mb(after.external - before.external),
    arrayBuffersMB: mb(after.arrayBuffers - before.arrayBuffers),
    bytesPerPath: Math.round((after.heapUsed - before.heapUsed + (after.external - before.external)) / PATHS),
    lookupsPerSecond: lookups.perSecond,
    cpuNsPerLookup: lookups.cpuNsPerLookup,
  };
  if (kind === 'compact') {
    // The path table alone (stored as the mirror stores it), filled again with the same entries: what the entry object and its hex cost on top of find.
    const paths = createPathTable(0, { affixes: true });
    const objects = createObjectTable();
    for (let i = 0; i < PATHS; i++) paths.set(pathAt(i), { object: objects.acquire(shaAt(i)), size: 1, mtime: 1 });
    result.findOnlyCpuNs = timeLookups(urls, (path) => paths.find(path)).cpuNsPerLookup;
    result.findHexCpuNs = timeLookups(urls, (path) => objects.hexOf(paths.objectOf(paths.find(path))).length).cpuNsPerLookup;
  }
  console.log(JSON.stringify(result));
}

if (impl === 'maps' || impl === 'compact') runChild(impl);
else {
  const rows = (['maps', 'compact'] as const).map((kind) => {
    const out = execFileSync(
      process.execPath,
      [
        '--expose-gc',
        '--conditions=source',
        '--import',
        'tsx',
        process.argv[1]!,
        '--paths',
        String(PATHS),
        '--lookups',
        String(LOOKUPS),
        '--impl',
        kind,
      ],
      { encoding: 'utf8', maxBuffer: 1 << 20 },
    );
    return JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>;
  });
  console.table(rows);
}
