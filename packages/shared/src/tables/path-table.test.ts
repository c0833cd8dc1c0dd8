import { describe, expect, it } from 'vitest';
import { MAX_REPO_PATH_BYTES } from '@metasync/shared';
import { findPathId, storedPathBytes } from './path-lookup.js';
import { createPathTable as createTable, hashPath, type PathTable, type PathTableOptions } from './path-table.js';

const entry = (object: number, size = object * 10, mtime = 1_700_000_000_000 + object) => ({ object, size, mtime });

function read(table: PathTable, path: string): { object: number; size: number; mtime: number } | undefined {
  const id = table.find(path);
  return id === -1 ? undefined : { object: table.objectOf(id), size: table.sizeOf(id), mtime: table.mtimeOf(id) };
}

// Every behaviour with paths stored whole (the primary's manifest) and without `p2/` and `.json` (the mirror's index).
describe.each([false, true])('path table (affixes left out: %s)', (affixes) => {
  const createPathTable = (expected = 0, options: PathTableOptions = {}, arenaBytes?: number): PathTable =>
    createTable(expected, { ...options, affixes }, arenaBytes);

  it('takes an arena of the given bytes, and grows a full large one by a quarter', () => {
    const paths = Array.from({ length: 100_000 }, (_, i) => `p2/vendor-${i % 97}/package-${i}.json`);
    const bytes = paths.reduce((sum, path) => sum + storedPathBytes(path, affixes), 0);
    const table = createPathTable(paths.length, {}, bytes);
    paths.forEach((path, i) => table.set(path, entry(i)));
    expect(table.arrays().arena.length).toBe(bytes);
    table.set('p2/new/one.json', entry(1));
    expect(table.arrays().arena.length).toBe(Math.ceil((bytes + storedPathBytes('p2/new/one.json', affixes)) * 1.25));
    expect(read(table, paths[77_777]!)).toEqual(entry(77_777));
  });

  it('starts with a sixty-fourth of headroom, then grows a full large table by an eighth, not double, keeping every path', () => {
    const n = 128_000;
    const room = n + n / 64;
    const table = createPathTable(n);
    for (let i = 0; i < room; i++) table.set(`p2/v${i % 97}/p${i}.json`, entry(i));
    expect(table.arrays().object.length).toBe(room);
    table.set('p2/new/one.json', entry(n));
    expect(table.arrays().object.length).toBe(room + room / 8);
    for (const i of [0, 1, n / 2, room - 1]) expect(read(table, `p2/v${i % 97}/p${i}.json`)).toEqual(entry(i));
    expect(read(table, 'p2/new/one.json')).toEqual(entry(n));
  });

  it('sets, finds, overwrites and deletes paths, reporting the object each pointed at', () => {
    const table = createPathTable();
    expect(table.set('p2/acme/foo.json', entry(1))).toBe(-1);
    expect(table.set('packages.json', entry(2))).toBe(-1);
    expect(read(table, 'p2/acme/foo.json')).toEqual(entry(1));
    expect(table.set('p2/acme/foo.json', entry(3, 7, 5))).toBe(1);
    expect(read(table, 'p2/acme/foo.json')).toEqual(entry(3, 7, 5));
    expect(table.size()).toBe(2);
    expect(table.delete('p2/acme/foo.json')).toBe(3);
    expect(table.delete('p2/acme/foo.json')).toBe(-1);
    expect(table.find('p2/acme/foo.json')).toBe(-1);
    expect(table.size()).toBe(1);
    expect(table.pathOf(table.find('packages.json'))).toBe('packages.json');
  });

  it('keeps publish times beyond 32 bits exactly, sizes up to 4 GiB, and refuses a size beyond', () => {
    const table = createPathTable();
    table.set('p2/a/b.json', { object: 0, size: 2 ** 32 - 1, mtime: 4_102_444_800_123 });
    expect(read(table, 'p2/a/b.json')).toEqual({ object: 0, size: 2 ** 32 - 1, mtime: 4_102_444_800_123 });
    for (const size of [2 ** 32, -1, Number.NaN])
      expect(() => table.set('p2/a/c.json', { object: 1, size, mtime: 0 })).toThrow(/under 4 GiB/);
    expect(table.find('p2/a/c.json')).toBe(-1);
  });

  it('tells apart paths that differ only in their last byte or in length', () => {
    const table = createPathTable();
    table.set('p2/a/b.json', entry(1));
    table.set('p2/a/b.jsoN', entry(2));
    table.set('p2/a/b.jso', entry(3));
    expect([table.find('p2/a/b.json'), table.find('p2/a/b.jsoN'), table.find('p2/a/b.jso')].map((id) => table.objectOf(id))).toEqual([
      1, 2, 3,
    ]);
    expect(table.find('p2/a/b.js')).toBe(-1);
  });

  it('reuses freed entry ids and tombstoned slots instead of growing under churn', () => {
    const table = createPathTable();
    for (let round = 0; round < 200; round++) {
      for (let i = 0; i < 10; i++) table.set(`p2/v/churn-${round}-${i}.json`, entry(i));
      for (let i = 0; i < 10; i++) expect(table.delete(`p2/v/churn-${round}-${i}.json`)).toBe(i);
    }
    expect(table.size()).toBe(0);
    const ids = new Set<number>();
    for (let i = 0; i < 10; i++) {
      table.set(`p2/v/after-${i}.json`, entry(i));
      ids.add(table.find(`p2/v/after-${i}.json`));
    }
    // 2,000 inserts and deletes later, the ten live paths still sit in the first ten ids.
    expect(Math.max(...ids)).toBeLessThan(10);
  });

  it('keeps every entry through slot growth, tombstone rebuilds and arena compaction', () => {
    const table = createPathTable();
    const live = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      const path = `p2/vendor-${i % 97}/package-${i}.json`;
      table.set(path, entry(i));
      live.set(path, i);
      if (i % 3 === 0) {
        const victim = `p2/vendor-${(i / 3) % 97}/package-${i / 3}.json`;
        if (live.has(victim)) {
          expect(table.delete(victim)).toBe(live.get(victim));
          live.delete(victim);
        }
      }
    }
    expect(table.size()).toBe(live.size);
    for (const [path, object] of live) expect(read(table, path)?.object).toBe(object);
    const seen: string[] = [];
    table.forEach((id) => seen.push(table.pathOf(id)));
    expect(seen.sort()).toEqual([...live.keys()].sort());
  });

  it('refuses to store a non-ASCII, empty or over-long path, and never finds one', () => {
    const table = createPathTable();
    expect(() => table.set('p2/ä/b.json', entry(1))).toThrow(TypeError);
    expect(() => table.set('', entry(1))).toThrow(TypeError);
    expect(() => table.set(`p2/${'x'.repeat(MAX_REPO_PATH_BYTES)}.json`, entry(1))).toThrow(TypeError);
    table.set(`p2/${'y'.repeat(MAX_REPO_PATH_BYTES - 8)}.json`, entry(2));
    expect(read(table, `p2/${'y'.repeat(MAX_REPO_PATH_BYTES - 8)}.json`)?.object).toBe(2);
    expect(table.find('p2/ä/b.json')).toBe(-1);
    expect(table.find('x'.repeat(100_000))).toBe(-1);
    expect(table.delete('p2/ä/b.json')).toBe(-1);
    expect(table.size()).toBe(1);
  });

  it('hashes without allocating and refuses non-ASCII with -1', () => {
    expect(hashPath('p2/acme/foo.json')).toBe(hashPath('p2/acme/foo.json'));
    expect(hashPath('p2/acme/foo.json')).not.toBe(hashPath('p2/acme/fop.json'));
    expect(hashPath('p2/\u00e9.json')).toBe(-1);
    expect(hashPath('p2/acme/foo.json')).toBeGreaterThanOrEqual(0);
  });

  it('keeps a shared table in SharedArrayBuffers through growth, and gives new arrays only when it replaced one', () => {
    const table = createPathTable(0, { shared: true });
    table.set('p2/a/0.json', entry(0));
    const first = table.arrays();
    table.set('p2/a/0.json', entry(1));
    expect(table.arrays()).toBe(first);
    for (let i = 1; i < 3_000; i++) table.set(`p2/vendor-${i % 13}/package-${i}.json`, entry(i));
    const grown = table.arrays();
    expect(grown).not.toBe(first);
    for (const array of Object.values(grown).filter(ArrayBuffer.isView)) expect(array.buffer).toBeInstanceOf(SharedArrayBuffer);
    // A reader holding only the arrays finds what the table finds.
    for (let i = 1; i < 3_000; i += 97)
      expect(findPathId(grown, `p2/vendor-${i % 13}/package-${i}.json`)).toBe(table.find(`p2/vendor-${i % 13}/package-${i}.json`));
    expect(findPathId(grown, 'p2/none/such.json')).toBe(-1);
  });

  it('ends a lookup over arrays that another thread is rewriting: ids beyond the entries and full slots match nothing', () => {
    const table = createPathTable();
    table.set('p2/a/b.json', entry(1));
    const torn = { ...table.arrays(), slotId: new Int32Array(table.arrays().slotId.length).fill(1_000_000) };
    expect(findPathId(torn, 'p2/a/b.json')).toBe(-1);
  });

  it('tells apart paths with and without the affixes, or with parts of them, and gives each back whole', () => {
    const table = createPathTable();
    const paths = [
      'p2/a/b.json',
      'p2/a/b~dev.json',
      'a/b.json',
      'p2/a/b.jsonx',
      'p2x/a/b.json',
      'p2/.json',
      'p2/x.json',
      'p2/',
      '.json',
      'packages.json',
      'p2/p2/.json.json',
    ];
    paths.forEach((path, i) => table.set(path, entry(i)));
    paths.forEach((path, i) => expect(read(table, path)?.object, path).toBe(i));
    const seen: string[] = [];
    table.forEach((id) => seen.push(table.pathOf(id)));
    expect(seen.sort()).toEqual([...paths].sort());
    for (const absent of ['p2/a/c.json', 'p2/a/b.jso', 'p2a/b.json', 'p2/json', 'p2/a/b']) expect(table.find(absent), absent).toBe(-1);
    expect(table.bytes()).toBe(paths.reduce((sum, path) => sum + storedPathBytes(path, affixes), 0));
  });

  it('keeps a presized table at its slot count under churn (tombstones cleared at the same size, not doubled)', () => {
    const n = 10_000;
    const table = createPathTable(n);
    for (let i = 0; i < n; i++) table.set(`p2/v${i % 13}/p${i}.json`, entry(i));
    const slots = table.arrays().slotId.length;
    for (let i = 0; i < 3 * n; i++) {
      expect(table.delete(`p2/v${i % 13}/p${i}.json`)).toBe(i);
      table.set(`p2/v${(i + n) % 13}/p${i + n}.json`, entry(i + n));
    }
    expect(table.size()).toBe(n);
    expect(table.arrays().slotId.length).toBe(slots);
    for (const i of [3 * n, 3 * n + 1, 4 * n - 1]) expect(read(table, `p2/v${i % 13}/p${i}.json`)).toEqual(entry(i));
  });

  it('trims an arena larger than asked to the live paths, keeping every entry', () => {
    const table = createPathTable(1_000, {}, 1_000_000);
    for (let i = 0; i < 1_000; i++) table.set(`p2/vendor-${i % 7}/package-${i}.json`, entry(i));
    table.trimArena(table.bytes() + 100);
    expect(table.arrays().arena.length).toBe(table.bytes() + 100);
    for (const i of [0, 1, 500, 999]) expect(read(table, `p2/vendor-${i % 7}/package-${i}.json`)).toEqual(entry(i));
    table.trimArena(10);
    expect(table.arrays().arena.length).toBe(Math.max(4096, table.bytes()));
  });
});
