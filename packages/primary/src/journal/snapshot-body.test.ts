import type { PathEntry } from '@metasync/shared';
import { describe, expect, it } from 'vitest';
import { decodeSnapshotBody, encodeSnapshotBody } from './snapshot-body.js';

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
});
