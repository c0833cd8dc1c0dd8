import { linedJsonHead, LINED_JSON_SEPARATOR, LINED_JSON_TAIL } from '@metasync/shared/fs';
import { describe, expect, it } from 'vitest';
import { parseSnapshotDocument } from './parse-document.js';

const entries = Array.from({ length: 30 }, (_, i) => ({
  path: `p2/acme/p${String(i).padStart(2, '0')}.json`,
  sha256: (i % 16).toString(16).repeat(64),
  size: i + 1,
  mtime: 1_700_000_000_000 + i,
}));

function lined(items: unknown[], head = '"kind":"snapshot","seq":5,"time":1700000000000'): Buffer {
  return Buffer.from(
    `${linedJsonHead(head, 'entries')}${items.map((item) => JSON.stringify(item)).join(LINED_JSON_SEPARATOR)}${LINED_JSON_TAIL}`,
  );
}

describe('parseSnapshotDocument', () => {
  it('reads a snapshot written an entry per line, and the same snapshot written whole, to the same value', () => {
    const whole = Buffer.from(JSON.stringify({ kind: 'snapshot', seq: 5, time: 1_700_000_000_000, entries }));
    const expected = { kind: 'snapshot', seq: 5, time: 1_700_000_000_000, entries };
    expect(parseSnapshotDocument(lined(entries), 'snapshot')).toEqual(expected);
    expect(parseSnapshotDocument(whole, 'snapshot')).toEqual(expected);
    expect(parseSnapshotDocument(lined([]), 'snapshot')).toEqual({ ...expected, entries: [] });
  });

  it('refuses a lined snapshot with a bad entry, naming it, as the whole-document schema would', () => {
    const bad = [...entries.slice(0, 3), { ...entries[3], path: '../etc/passwd' }];
    expect(() => parseSnapshotDocument(lined(bad), 'snapshot')).toThrow(/wrong shape: entries\.3: path/);
    expect(() => parseSnapshotDocument(lined(entries, '"kind":"batch","seq":5,"time":1'), 'snapshot')).toThrow(/wrong shape: kind/);
  });

  it('refuses a lined snapshot cut short or with a line that is not JSON', () => {
    const body = lined(entries);
    expect(() => parseSnapshotDocument(body.subarray(0, body.lastIndexOf(10)), 'snapshot')).toThrow(/not JSON/);
    expect(() => parseSnapshotDocument(Buffer.from(body.toString().replace('"sha256"', '"sha256')), 'snapshot')).toThrow(/not JSON/);
    // A head line that is not JSON fields is the same protocol error, not a stray SyntaxError.
    expect(() => parseSnapshotDocument(lined(entries, '"kind":"snapshot",oops'), 'snapshot')).toThrow(
      expect.objectContaining({ code: 'METASYNC_ERR_SYNC_PROTOCOL' }),
    );
  });
});
