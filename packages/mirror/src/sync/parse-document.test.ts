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
  it('reads a snapshot written an entry per line, and the same snapshot written whole, to the same value', async () => {
    const whole = Buffer.from(JSON.stringify({ kind: 'snapshot', seq: 5, time: 1_700_000_000_000, entries }));
    const expected = { kind: 'snapshot', seq: 5, time: 1_700_000_000_000, entries };
    expect(await parseSnapshotDocument(lined(entries), 'snapshot')).toEqual(expected);
    expect(await parseSnapshotDocument(whole, 'snapshot')).toEqual(expected);
    expect(await parseSnapshotDocument(lined([]), 'snapshot')).toEqual({ ...expected, entries: [] });
  });

  it('refuses a lined snapshot with a bad entry, naming it, as the whole-document schema would', async () => {
    const bad = [...entries.slice(0, 3), { ...entries[3], path: '../etc/passwd' }];
    await expect(parseSnapshotDocument(lined(bad), 'snapshot')).rejects.toThrow(/wrong shape: entries\.3: path/);
    await expect(parseSnapshotDocument(lined(entries, '"kind":"batch","seq":5,"time":1'), 'snapshot')).rejects.toThrow(/wrong shape: kind/);
  });

  it('refuses a lined snapshot cut short or with a line that is not JSON', async () => {
    const body = lined(entries);
    await expect(parseSnapshotDocument(body.subarray(0, body.lastIndexOf(10)), 'snapshot')).rejects.toThrow(/not JSON/);
    await expect(parseSnapshotDocument(Buffer.from(body.toString().replace('"sha256"', '"sha256')), 'snapshot')).rejects.toThrow(
      /not JSON/,
    );
    // A head line that is not JSON fields is the same protocol error, not a stray SyntaxError.
    await expect(parseSnapshotDocument(lined(entries, '"kind":"snapshot",oops'), 'snapshot')).rejects.toThrow(
      expect.objectContaining({ code: 'METASYNC_ERR_SYNC_PROTOCOL' }),
    );
  });
});
