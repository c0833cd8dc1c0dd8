import { describe, expect, it } from 'vitest';
import { forEachPackedObject, packGeneration, unpackGeneration } from './packed-generation.js';
import type { JournalGeneration } from './record.js';

const TIME = 1_796_000_000_000;
const generation: JournalGeneration = {
  seq: 42,
  time: TIME,
  entries: [
    { path: 'p2/acme/foo.json', sha256: `00${'1'.repeat(62)}`, size: 123, mtime: TIME, origin: 'watch' },
    { path: 'p2/acme/gone.json', deleted: true, mtime: TIME, origin: 'api' },
    { path: 'p2/ünïcødé/名前~dev.json', sha256: `ff${'e'.repeat(62)}`, size: 2 ** 32 - 1, mtime: TIME, origin: 'upstream' },
    { path: 'dist-pins/acme.json', sha256: `ff${'0'.repeat(62)}`, size: 0, mtime: TIME - 5, origin: 'pins' },
    { path: 'p2/old/deleted.json', deleted: true, mtime: 7, origin: 'pins' },
  ],
};

describe('packed generations', () => {
  it('unpack to the generation packed: every origin, deletions, a path beyond ASCII, the largest size, own mtimes', () => {
    const packed = packGeneration(generation);
    expect(packed).toMatchObject({ seq: 42, time: TIME, count: 5 });
    expect(unpackGeneration(packed)).toEqual(generation);
  });

  it('take an entry in about its path bytes plus 40, where its objects took about 235', () => {
    const many: JournalGeneration = {
      seq: 1,
      time: TIME,
      entries: Array.from({ length: 1000 }, (_, i) => ({
        path: `p2/vendor-${i}/package-${i}.json`,
        sha256: i.toString(16).padStart(64, '0'),
        size: i,
        mtime: TIME,
        origin: 'watch' as const,
      })),
    };
    const pathBytes = many.entries.reduce((total, entry) => total + entry.path.length, 0);
    expect(packGeneration(many).bytes.length).toBe(pathBytes + 39 * 1000);
  });

  it("visit only the objects of the shards the mask sets, and no deletion's", () => {
    const packed = packGeneration(generation);
    const mask = new Uint8Array(256);
    mask[0xff] = 1;
    const seen: string[] = [];
    forEachPackedObject(packed, mask, (sha256) => seen.push(sha256));
    expect(seen).toEqual([`ff${'e'.repeat(62)}`, `ff${'0'.repeat(62)}`]);
    mask[0x00] = 1;
    seen.length = 0;
    forEachPackedObject(packed, mask, (sha256) => seen.push(sha256));
    expect(seen).toHaveLength(3);
  });

  it('refuse what the packing cannot hold rather than store it wrong', () => {
    const bad = (entry: JournalGeneration['entries'][number]) => () => packGeneration({ seq: 1, time: TIME, entries: [entry] });
    expect(bad({ path: 'p2/a.json', sha256: 'xyz', size: 1, mtime: TIME, origin: 'watch' })).toThrow(/not 64 lower-case hex/);
    expect(bad({ path: 'p2/a.json', sha256: 'A'.repeat(64), size: 1, mtime: TIME, origin: 'watch' })).toThrow(/not 64 lower-case hex/);
    expect(bad({ path: 'p2/a.json', sha256: 'a'.repeat(65), size: 1, mtime: TIME, origin: 'watch' })).toThrow(/not 64 lower-case hex/);
    expect(bad({ path: 'p2/a.json', sha256: 'a'.repeat(64), size: 1.5, mtime: TIME, origin: 'watch' })).toThrow(/size 1.5/);
    expect(bad({ path: 'p2/a.json', sha256: 'a'.repeat(64), size: 2 ** 32, mtime: TIME, origin: 'watch' })).toThrow(/size/);
    expect(bad({ path: `p2/${'a'.repeat(600)}.json`, deleted: true, mtime: TIME, origin: 'watch' })).toThrow(/bytes/);
    expect(bad({ path: 'p2/a.json', deleted: true, mtime: TIME, origin: 'mars' as never })).toThrow(/origin/);
  });
});
