import { createHash } from 'node:crypto';
import type { PathEntry } from '@metasync/shared';
import { describe, expect, it } from 'vitest';
import { createManifest } from './manifest.js';
import { decodeSnapshotBody, encodeSnapshotBody, streamSnapshotBody } from './snapshot-body.js';

function entries(count: number): PathEntry[] {
  return Array.from({ length: count }, (_, i) => ({
    path: `p2/vendor${i % 7}/pkg-${i}${i % 3 === 0 ? '~dev' : ''}.json`,
    sha256: (i % 16).toString(16).repeat(64),
    size: i * 37 + 1,
    mtime: 1_700_000_000_000 + i,
  })).sort((a, b) => (a.path < b.path ? -1 : 1));
}

function encode(list: PathEntry[], seq = 9, time = 1_700_000_123_456): Buffer {
  const byPath = new Map(list.map((entry) => [entry.path, entry]));
  return encodeSnapshotBody({ seq, time, size: list.length, pathAt: (i) => list[i]!.path, entryAt: (i) => byPath.get(list[i]!.path)! });
}

function decode(body: Buffer): { seq: number; time: number; entries: PathEntry[] } {
  const decoded: PathEntry[] = [];
  const head = decodeSnapshotBody(body, (entry, index) => {
    expect(index).toBe(decoded.length);
    decoded.push(entry);
  });
  return { ...head, entries: decoded };
}

describe('snapshot body', () => {
  it.each([0, 1, 2, 500])(
    'is one JSON document equal to the Snapshot, one entry per line, and reads back entry by entry (%i entries)',
    (count) => {
      const list = entries(count);
      const body = encode(list);
      const snapshot = { kind: 'snapshot', seq: 9, time: 1_700_000_123_456, entries: list };
      expect(JSON.parse(body.toString('utf8'))).toEqual(snapshot);
      expect(body.toString('utf8').split('\n')).toHaveLength(count + (count === 0 ? 3 : 2));
      expect(decode(body)).toEqual({ seq: 9, time: 1_700_000_123_456, entries: list });
    },
  );

  it('reads a Snapshot written whole on one line (files from before the line layout)', () => {
    const list = entries(20);
    const body = Buffer.from(JSON.stringify({ kind: 'snapshot', seq: 4, time: 5, entries: list }));
    expect(decode(body)).toEqual({ seq: 4, time: 5, entries: list });
  });

  it('refuses a body cut after a line', () => {
    const body = encode(entries(10));
    const cut = body.subarray(0, body.lastIndexOf(10));
    expect(() => decode(cut)).toThrow(/damaged/);
  });

  it('refuses a body whose entry lines are broken', () => {
    const text = encode(entries(3)).toString('utf8').replace('"sha256"', '"sha256');
    expect(() => decode(Buffer.from(text))).toThrow();
  });

  it('copies lines from the compact manifest byte for byte as lineOf writes them, and falls back where JSON needs more', () => {
    const manifest = createManifest(0);
    // Digests whose two nibbles differ in every byte order, sizes of every digit count up to the table's 4 GiB.
    const list = entries(300).map((entry, i) => ({
      ...entry,
      sha256: createHash('sha256').update(entry.path).digest('hex'),
      size: i === 0 ? 2 ** 32 - 1 : 10 ** (i % 10),
    }));
    for (const entry of list) manifest.set(entry.path, { sha256: entry.sha256, size: entry.size, mtime: entry.mtime, origin: 'watch' });
    // Never published (paths are checked first), but the table can hold them: each takes the string way.
    manifest.set('p2/quote"d/x.json', { sha256: 'ab'.repeat(32), size: 0, mtime: 1, origin: 'api' });
    manifest.set('p2/tab\tbed/x.json', { sha256: 'cd'.repeat(32), size: 12, mtime: 1, origin: 'api' });
    manifest.set('p2/back\\slash/x.json', { sha256: 'ef'.repeat(32), size: 3, mtime: 7, origin: 'api' });
    manifest.set('p2/fraction/x.json', { sha256: '01'.repeat(32), size: 4, mtime: 1.5, origin: 'api' });
    manifest.set('p2/huge/x.json', { sha256: '23'.repeat(32), size: 8, mtime: 2 ** 60, origin: 'api' });
    manifest.set('p2/negative/x.json', { sha256: '45'.repeat(32), size: 5, mtime: -1, origin: 'api' });
    manifest.set('p2/unit\x1fsep/x.json', { sha256: '67'.repeat(32), size: 6, mtime: 9, origin: 'api' });
    const fallbacks = 7;
    // Copied (no string made): -0 prints as 0, as a template string prints it.
    manifest.set('p2/minus-zero/x.json', { sha256: '89'.repeat(32), size: -0, mtime: 10, origin: 'api' });
    const sorted = manifest.sorted!();
    let stringsBuilt = 0;
    const input = {
      seq: 3,
      time: 1_700_000_000_001,
      ...sorted,
      pathAt: (index: number) => {
        stringsBuilt++;
        return sorted.pathAt(index);
      },
    };
    const copied = encodeSnapshotBody(input);
    // Each line that falls back is built once; every other one is copied.
    expect(stringsBuilt).toBe(fallbacks);
    const built = encodeSnapshotBody({ ...input, rawAt: undefined });
    expect(stringsBuilt).toBe(fallbacks + 308);
    expect(copied.equals(built)).toBe(true);
    // In chunks smaller than a line (each line given alone) and of a few lines, the same bytes, and the length returned.
    for (const chunkBytes of [40, 1000]) {
      const chunks: Buffer[] = [];
      const length = streamSnapshotBody(input, (chunk) => chunks.push(Buffer.from(chunk)), chunkBytes);
      expect(Buffer.concat(chunks).equals(copied)).toBe(true);
      expect(length).toBe(copied.length);
      expect(chunks.length).toBeGreaterThan(copied.length / (chunkBytes * 2));
    }
    const snapshot = JSON.parse(copied.toString('utf8')) as { entries: PathEntry[] };
    expect(snapshot.entries).toHaveLength(308);
    expect(snapshot.entries.find((entry) => entry.path === 'p2/negative/x.json')?.mtime).toBe(-1);
    expect(snapshot.entries.find((entry) => entry.path === 'p2/minus-zero/x.json')?.size).toBe(0);
    expect(snapshot.entries.find((entry) => entry.path.startsWith('p2/tab'))).toEqual({
      path: 'p2/tab\tbed/x.json',
      sha256: 'cd'.repeat(32),
      size: 12,
      mtime: 1,
    });
    expect(snapshot.entries.find((entry) => entry.path === 'p2/fraction/x.json')?.mtime).toBe(1.5);
  });
});
