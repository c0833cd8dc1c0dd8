import { describe, expect, it } from 'vitest';
import { sha256Hex } from '@metasync/shared';
import { createObjectTable } from './object-table.js';

const digest = (n: number) => sha256Hex(`object-${n}`);

describe('object table', () => {
  it('starts with a sixty-fourth of headroom, then grows a full large table by an eighth, not double, keeping every digest', () => {
    const n = 128_000;
    const room = n + n / 64;
    const table = createObjectTable(n);
    for (let i = 0; i < room; i++) table.acquire(digest(i));
    expect(table.arrays().digest.length).toBe(room * 8);
    const added = table.acquire(digest(room));
    expect(table.arrays().digest.length).toBe((room + room / 8) * 8);
    for (const i of [0, 1, n / 2, room - 1]) expect(table.has(digest(i))).toBe(true);
    expect(table.hexOf(added)).toBe(digest(room));
  });

  it('counts thousands of references to one digest past the count byte, and reports only the last release', () => {
    const table = createObjectTable();
    const id = table.acquire(digest(7));
    const other = table.acquire(digest(8));
    for (let i = 1; i < 1_000; i++) expect(table.acquire(digest(7))).toBe(id);
    expect(table.countOf(id)).toBe(1_000);
    for (let i = 1_000; i > 1; i--) expect(table.release(id)).toBeUndefined();
    expect(table.countOf(id)).toBe(1);
    expect(table.release(id)).toBe(digest(7));
    expect(table.has(digest(7))).toBe(false);
    // The freed id comes back with a count of one, not a left-over overflow count.
    expect(table.acquire(digest(9))).toBe(id);
    expect(table.countOf(id)).toBe(1);
    expect(table.countOf(other)).toBe(1);
  });

  it('counts references per digest and reports the last release', () => {
    const table = createObjectTable();
    const a = table.acquire(digest(1));
    expect(table.acquire(digest(1))).toBe(a);
    const b = table.acquire(digest(2));
    expect(table.countOf(a)).toBe(2);
    expect(table.hexOf(a)).toBe(digest(1));
    expect(table.size()).toBe(2);
    expect(table.release(a)).toBeUndefined();
    expect(table.has(digest(1))).toBe(true);
    expect(table.release(a)).toBe(digest(1));
    expect(table.has(digest(1))).toBe(false);
    expect(table.hexOf(b)).toBe(digest(2));
    expect(table.size()).toBe(1);
    expect(() => table.release(a)).toThrow(/released more often/);
  });

  it('refuses what is not a lowercase sha256 hex digest, and never has one', () => {
    const table = createObjectTable();
    for (const bad of ['', 'ab', digest(1).toUpperCase(), `${digest(1).slice(0, 63)}g`, `${digest(1)}00`]) {
      expect(() => table.acquire(bad)).toThrow(TypeError);
      expect(table.has(bad)).toBe(false);
    }
  });

  it('keeps every digest and count through growth and tombstone rebuilds, reusing freed ids', () => {
    const table = createObjectTable();
    const counts = new Map<string, number>();
    for (let i = 0; i < 5_000; i++) {
      table.acquire(digest(i % 3_000));
      counts.set(digest(i % 3_000), (counts.get(digest(i % 3_000)) ?? 0) + 1);
    }
    for (let i = 0; i < 3_000; i += 2) {
      const id = table.acquire(digest(i));
      for (let n = counts.get(digest(i))!; n > 0; n--) table.release(id);
      expect(table.release(id)).toBe(digest(i));
      counts.delete(digest(i));
    }
    expect(table.size()).toBe(counts.size);
    const seen: string[] = [];
    table.forEach((sha256) => seen.push(sha256));
    expect(seen.sort()).toEqual([...counts.keys()].sort());
    // Freed ids come back: 1,500 new digests fit in the ids 0..2,999 already allocated.
    for (let i = 0; i < 1_500; i++) expect(table.acquire(digest(10_000 + i))).toBeLessThan(3_000);
  });
});
