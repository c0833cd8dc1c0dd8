import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_OBJECT_BYTES, sha256Hex, type ChangeEntry, type PathEntry } from '@metasync/shared';
import { applyEntries, emptyIndex, indexToMap, orderRootLast, replaceWithSnapshot, type IndexEntry } from './index-state.js';

/** The index as it was before the compact tables (two Maps): the model the tables must agree with. */
function createModel() {
  const paths = new Map<string, IndexEntry>();
  const refs = new Map<string, number>();
  function release(sha256: string, dropped: Set<string>): void {
    const count = refs.get(sha256)! - 1;
    if (count > 0) refs.set(sha256, count);
    else {
      refs.delete(sha256);
      dropped.add(sha256);
    }
  }
  return {
    paths,
    refs,
    apply(entries: readonly ChangeEntry[]): string[] {
      const dropped = new Set<string>();
      for (const entry of orderRootLast(entries)) {
        const old = paths.get(entry.path);
        if ('deleted' in entry) {
          if (old === undefined) continue;
          paths.delete(entry.path);
        } else {
          paths.set(entry.path, { sha256: entry.sha256, size: entry.size, mtime: entry.mtime });
          refs.set(entry.sha256, (refs.get(entry.sha256) ?? 0) + 1);
        }
        if (old !== undefined) release(old.sha256, dropped);
      }
      return [...dropped].filter((sha256) => !refs.has(sha256));
    },
    replace(entries: readonly PathEntry[]): string[] {
      const before = [...refs.keys()];
      paths.clear();
      refs.clear();
      this.apply(entries);
      return before.filter((sha256) => !refs.has(sha256));
    },
  };
}

const PATHS = ['packages.json', 'p2/a/b.json', 'p2/a/b~dev.json', 'p2/a/c.json', 'p2/longer-vendor/some-package.json', 'x.json'];
const path = fc.oneof(
  fc.constantFrom(...PATHS),
  fc.integer({ min: 0, max: 300 }).map((n) => `p2/v${n % 7}/p${n}.json`),
);
const sha256 = fc.integer({ min: 0, max: 12 }).map((n) => sha256Hex(`object-${n}`));
const put = fc.record({
  path,
  sha256,
  size: fc.integer({ min: 0, max: MAX_OBJECT_BYTES }),
  mtime: fc.integer({ min: 0, max: 4_102_444_800_000 }),
});
const change: fc.Arbitrary<ChangeEntry> = fc.oneof(
  { weight: 3, arbitrary: put },
  { weight: 1, arbitrary: fc.record({ path, deleted: fc.constant(true as const), mtime: fc.constant(1) }) },
);
const operation = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('batch' as const), entries: fc.array(change, { maxLength: 60 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('snapshot' as const), entries: fc.array(put, { maxLength: 80 }) }) },
);

describe('index state', () => {
  it.each([
    { memory: 'ordinary', shared: false },
    { memory: 'shared', shared: true },
  ])('agrees with a Map model over random batches and snapshots ($memory memory): entries, refcounts and dereferences', ({ shared }) => {
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 40 }), (operations) => {
        const state = emptyIndex(0, { shared });
        expect(state.sharing === undefined).toBe(!shared);
        const model = createModel();
        for (const op of operations) {
          if (op.kind === 'batch') {
            expect(applyEntries(state, op.entries, 5).map((d) => d.sha256)).toEqual(model.apply(op.entries));
          } else {
            // A snapshot holds each path once.
            const entries = [...new Map(op.entries.map((e) => [e.path, e])).values()];
            const dropped = replaceWithSnapshot(state, { seq: 1, time: 1, entries }, 5).map((d) => d.sha256);
            expect(dropped.sort()).toEqual(model.replace(entries).sort());
          }
          expect(state.pathCount()).toBe(model.paths.size);
          expect(state.objectCount()).toBe(model.refs.size);
          expect(new Map([...indexToMap(state)].sort())).toEqual(new Map([...model.paths].sort()));
          for (const p of PATHS) expect(state.lookup(p)).toEqual(model.paths.get(p));
          for (let n = 0; n <= 12; n++) expect(state.hasObject(sha256Hex(`object-${n}`))).toBe(model.refs.has(sha256Hex(`object-${n}`)));
          if (shared) {
            const layout = state.sharing!.handle().layout;
            expect(layout.paths.slotId.buffer).toBeInstanceOf(SharedArrayBuffer);
            expect(layout.paths.arena.buffer).toBeInstanceOf(SharedArrayBuffer);
            expect(layout.objects.digest.buffer).toBeInstanceOf(SharedArrayBuffer);
          }
        }
      }),
      { numRuns: shared ? 100 : 300 },
    );
  });

  it('keeps an object that a batch drops from one path and points another path at', () => {
    const state = emptyIndex();
    const a = sha256Hex('a');
    applyEntries(state, [{ path: 'p2/x/1.json', sha256: a, size: 1, mtime: 1 }], 1);
    const dropped = applyEntries(
      state,
      [
        { path: 'p2/x/1.json', deleted: true, mtime: 2 },
        { path: 'p2/x/2.json', sha256: a, size: 1, mtime: 2 },
      ],
      2,
    );
    expect(dropped).toEqual([]);
    expect(state.hasObject(a)).toBe(true);
  });

  it('hands out a fresh entry per lookup, so a caller cannot change the index through it', () => {
    const state = emptyIndex();
    state.set('p2/x/1.json', { sha256: sha256Hex('a'), size: 1, mtime: 10 });
    const first = state.lookup('p2/x/1.json')!;
    first.mtime = 99;
    expect(state.lookup('p2/x/1.json')).toEqual({ sha256: sha256Hex('a'), size: 1, mtime: 10 });
    expect(state.lookup('p2/x/2.json')).toBeUndefined();
  });

  it('switches a batch in one synchronous call, root files last', () => {
    const state = emptyIndex();
    const seen: string[] = [];
    const original = state.set.bind(state);
    state.set = (p, entry) => {
      seen.push(p);
      return original(p, entry);
    };
    applyEntries(
      state,
      [
        { path: 'packages.json', sha256: sha256Hex('root'), size: 1, mtime: 1 },
        { path: 'p2/a/b.json', sha256: sha256Hex('b'), size: 1, mtime: 1 },
      ],
      1,
    );
    expect(seen).toEqual(['p2/a/b.json', 'packages.json']);
  });
});

describe('table sizing', () => {
  /** Bytes of every array the index's tables hold (what its shared memory costs). */
  function tableBytes(state: ReturnType<typeof emptyIndex>): number {
    const { layout } = state.sharing!.handle();
    return [...Object.values(layout.paths), ...Object.values(layout.objects)].reduce((sum, array) => sum + array.byteLength, 0);
  }

  it('sizes an empty index for the batch it takes, as for a base of the same paths', () => {
    const entries: PathEntry[] = Array.from({ length: 5_000 }, (_, i) => ({
      path: `p2/vendor${i % 37}/package-${i}.json`,
      sha256: sha256Hex(`object ${i}`),
      size: 100 + i,
      mtime: 1_000 + i,
    }));
    const applied = emptyIndex(0, { shared: true });
    applyEntries(applied, entries, 1_000);
    const loaded = emptyIndex(0, { shared: true });
    replaceWithSnapshot(loaded, { seq: 1, time: 1_000, entries }, 1_000);
    expect(applied.pathCount()).toBe(5_000);
    expect(tableBytes(applied)).toBe(tableBytes(loaded));
    // The arena holds the paths' bytes without `p2/` and `.json`, and a sixteenth more, not 40 bytes a path.
    const pathBytes = entries.reduce((sum, entry) => sum + entry.path.length - 'p2/'.length - '.json'.length, 0);
    expect(loaded.pathBytes()).toBe(pathBytes);
    expect(loaded.sharing!.handle().layout.paths.arena.byteLength).toBe(pathBytes + Math.ceil(pathBytes / 16));
  });

  it('trims an arena sized by an older, larger figure to the paths and a sixteenth more, and still finds them', () => {
    const state = emptyIndex(0, { shared: true });
    // A base from before the affixes were left out recorded whole paths' bytes.
    state.clear(2_000, 2_000 * 40);
    for (let i = 0; i < 2_000; i++) state.set(`p2/vendor${i % 37}/package-${i}.json`, { sha256: sha256Hex(`o${i}`), size: i, mtime: i });
    const bytes = state.pathBytes();
    state.trimArena();
    expect(state.sharing!.handle().layout.paths.arena.byteLength).toBe(bytes + Math.ceil(bytes / 16));
    expect(state.lookup('p2/vendor1/package-1999.json')).toEqual({ sha256: sha256Hex('o1999'), size: 1999, mtime: 1999 });
  });

  it('refuses to switch to tables prepared before another change, instead of dropping that change', () => {
    const state = emptyIndex(0, { shared: true });
    applyEntries(state, [{ path: 'p2/a/b.json', sha256: sha256Hex('one'), size: 3, mtime: 1 }], 1);
    const prepared = state.prepareNow([{ path: 'p2/a/c.json', sha256: sha256Hex('two'), size: 3, mtime: 2 }]);
    state.write(() => {
      applyEntries(state, [{ path: 'p2/a/d.json', sha256: sha256Hex('three'), size: 5, mtime: 3 }], 3);
      state.seq = 4;
    });
    expect(() => state.switchTo(prepared, { seq: 5, time: 5 })).toThrow(/index changed between prepare and switch/);
    expect(state.lookup('p2/a/d.json')?.sha256).toBe(sha256Hex('three'));
  });
});
