import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { sha256Hex } from '@metasync/shared';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FrozenManifest } from './manifest-freeze.js';
import { createManifest, type ManifestEntry } from './manifest.js';
import { sortedView } from './manifest-view.js';

const entryArb = fc.record({
  sha256: fc.integer({ min: 0, max: 20 }).map((n) => sha256Hex(String(n))),
  size: fc.integer({ min: 0, max: 1 << 30 }),
  mtime: fc.integer({ min: 0, max: 2 ** 45 }),
  origin: fc.constantFrom('watch' as const, 'api' as const),
});
const pathArb = fc.oneof(
  fc.integer({ min: 0, max: 60 }).map((n) => `p2/vendor${n % 7}/pkg-${n}.json`),
  // Prefixes of one another and of longer paths: the sorted view compares bytes, then length.
  fc.constantFrom('p2/a.json', 'p2/a.json~dev', 'p2/a', 'p2/a-b.json', 'p2/A.json', 'p2/a/b.json', 'p'),
);
const opArb = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('set' as const), path: pathArb, entry: entryArb }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('delete' as const), path: pathArb }) },
  // A snapshot's signing thread reading the tables while commits go on (manifest-freeze.ts), possibly several.
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('freeze' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('thaw' as const), which: fc.nat() }) },
);

describe('compact manifest', () => {
  it('answers as a Map would through any sequence of sets and deletes, frozen or not', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 400 }), (ops) => {
        const map = new Map<string, ManifestEntry>();
        const manifest = createManifest();
        const freezes: { frozen: FrozenManifest; paths: string[] }[] = [];
        const thaw = (index: number): void => {
          const { frozen, paths } = freezes.splice(index, 1)[0]!;
          // What the signing thread read: the manifest as it was at its freeze, whatever came since.
          const view = sortedView(frozen.tables);
          expect(Array.from({ length: view.size }, (_, i) => view.pathAt(i))).toEqual(paths);
          frozen.thaw();
        };
        for (const op of ops) {
          if (op.kind === 'freeze') {
            if (manifest.changesWaiting!()) {
              expect(() => manifest.freeze!()).toThrow(/wait/);
              continue;
            }
            freezes.push({ frozen: manifest.freeze!(), paths: [...map.keys()].sort() });
            continue;
          }
          if (op.kind === 'thaw') {
            if (freezes.length > 0) thaw(op.which % freezes.length);
            continue;
          }
          if (op.kind === 'set') {
            map.set(op.path, op.entry);
            manifest.set(op.path, op.entry);
          } else {
            expect(manifest.delete(op.path)).toBe(map.delete(op.path));
          }
          expect(manifest.size).toBe(map.size);
          expect(manifest.get(op.path)).toEqual(map.get(op.path));
          expect(manifest.has(op.path)).toBe(map.has(op.path));
        }
        while (freezes.length > 0) thaw(freezes.length - 1);
        const sorted = <T extends [string, unknown]>(list: T[]): T[] => list.sort((a, b) => a[0].localeCompare(b[0]));
        expect(sorted([...manifest.entries()])).toEqual(sorted([...map.entries()]));
        expect([...manifest.keys()].sort()).toEqual([...map.keys()].sort());
        expect([...manifest.values()].length).toBe(map.size);
        const inOrder = manifest.sorted!();
        const keys = [...map.keys()].sort();
        expect(Array.from({ length: inOrder.size }, (_, i) => inOrder.pathAt(i))).toEqual(keys);
        expect(Array.from({ length: inOrder.size }, (_, i) => inOrder.entryAt(i))).toEqual(keys.map((key) => map.get(key)));
        // The object GC's roots: every referenced object and nothing else (a released one included).
        const referenced = new Set([...map.values()].map((entry) => entry.sha256));
        for (let n = 0; n <= 20; n++) expect(manifest.hasObject!(sha256Hex(String(n)))).toBe(referenced.has(sha256Hex(String(n))));
        for (const origin of ['watch', 'api', 'upstream'] as const) {
          const fromMap = [...map].filter(([, entry]) => entry.origin === origin).map(([path]) => path);
          expect([...manifest.pathsWithOrigin!(origin)].sort()).toEqual(fromMap.sort());
        }
      }),
      { numRuns: 200 },
    );
  });

  it('skips a path deleted while an iteration is under way, as Map iteration does', () => {
    const manifest = createManifest();
    const entry: ManifestEntry = { sha256: sha256Hex('x'), size: 1, mtime: 2, origin: 'api' };
    for (let i = 0; i < 10; i++) manifest.set(`p2/acme/p${i}.json`, entry);
    const seen: string[] = [];
    for (const path of manifest.keys()) {
      seen.push(path);
      if (path === 'p2/acme/p0.json') manifest.delete('p2/acme/p5.json');
    }
    expect(seen).not.toContain('p2/acme/p5.json');
    expect(seen).toHaveLength(9);
  });

  it('holds 100,000 paths in under 200 bytes a path, well under what a Map of entry objects takes', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const used = async (): Promise<number> => {
      // V8 frees array buffers a collection found dead on a background thread: read after it had time to
      // (measured right after gc(), the arrays the tables outgrew were sometimes still counted: 264 B a path).
      gc();
      await new Promise((resolve) => setTimeout(resolve, 100));
      gc();
      const usage = process.memoryUsage();
      return usage.heapUsed + usage.arrayBuffers;
    };
    const fill = (manifest: { set(path: string, entry: ManifestEntry): unknown }): void => {
      for (let i = 0; i < 100_000; i++) {
        const sha256 = sha256Hex(String(i));
        manifest.set(`p2/vendor${i % 5000}/package-number-${i}.json`, { sha256, size: i, mtime: 1_700_000_000_000 + i, origin: 'watch' });
      }
    };
    let before = await used();
    const map = new Map<string, ManifestEntry>();
    fill(map);
    const mapBytes = (await used()) - before;
    before = await used();
    const manifest = createManifest();
    fill(manifest);
    const compactBytes = (await used()) - before;
    expect(manifest.size).toBe(map.size);
    expect(compactBytes / 100_000).toBeLessThan(200);
    expect(compactBytes).toBeLessThan(mapBytes * 0.6);
  });
});
