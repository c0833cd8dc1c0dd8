import { mkdtemp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '@metasync/shared';
import { encodeRecord } from '@metasync/shared/fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { forEachKeptSha, KEPT_SHA_HEX_CHARS, readSnapshotShas, type PackedShas } from './snapshot-shas.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-snapshot-shas-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const line = (sha256: string, i: number): string => `{"path":"p2/v${i % 7}/p${i}.json","sha256":"${sha256}","size":${i},"mtime":1}`;

/** A snapshot file as snapshots.ts writes it: the body record, then the meta record. */
async function writeSnapshot(name: string, body: string): Promise<string> {
  const path = join(dir, name);
  const meta = Buffer.from(JSON.stringify({ signature: 'k.s', origins: 'w' }));
  await writeFile(path, Buffer.concat([encodeRecord(Buffer.from(body)), encodeRecord(meta)]));
  return path;
}

/** The kept hashes, each as its leading hex characters (the bucket's shard first). */
const unpack = (packed: PackedShas): string[] => {
  const prefixes: string[] = [];
  packed.forEach((bucket, shard) => forEachKeptSha(bucket, shard, (prefix) => prefixes.push(prefix)));
  return prefixes;
};
const kept = (shas: readonly string[]): string[] => shas.map((sha) => sha.slice(0, KEPT_SHA_HEX_CHARS));

describe('snapshot file hashes read in chunks', () => {
  it('finds every hash whatever the chunk size, including hashes and keys cut by a chunk end, in their shard', async () => {
    const shas = Array.from({ length: 500 }, (_, i) => sha256Hex(`object ${i}`));
    const path = await writeSnapshot('a.bin', `{"kind":"snapshot","seq":3,"time":3,"entries":[\n${shas.map(line).join(',\n')}\n]}`);
    for (const chunkBytes of [1, 7, 73, 74, 75, 100, 4096, 1 << 20]) {
      const packed = (await readSnapshotShas(path, chunkBytes))!;
      expect(unpack(packed).sort(), `chunks of ${chunkBytes}`).toEqual(kept(shas).sort());
    }
  });

  it('refuses a damaged body (CRC), a malformed hash, a hash cut by the end of the body and a file cut short; a missing file is undefined', async () => {
    const good = `{"kind":"snapshot","seq":3,"time":3,"entries":[\n${line(sha256Hex('x'), 1)}\n]}`;
    const damaged = await writeSnapshot('damaged.bin', good);
    const bytes = await import('node:fs/promises').then((fs) => fs.readFile(damaged));
    bytes[40] = bytes[40]! ^ 1;
    await writeFile(damaged, bytes);
    const malformed = await writeSnapshot('malformed.bin', good.replace(sha256Hex('x'), 'Z'.repeat(64)));
    const cutHash = await writeSnapshot('cut-hash.bin', `{"entries":[{"sha256":"${'ab'.repeat(20)}`);
    const short = await writeSnapshot('short.bin', good);
    await truncate(short, 30);
    for (const path of [damaged, malformed, cutHash, short]) {
      for (const chunkBytes of [5, 1 << 20]) {
        await expect(readSnapshotShas(path, chunkBytes), `${path} in chunks of ${chunkBytes}`).rejects.toMatchObject({
          code: 'METASYNC_ERR_JOURNAL_CORRUPT',
        });
      }
    }
    expect(await readSnapshotShas(join(dir, 'none.bin'))).toBeUndefined();
  });

  it('refuses a file edited in place between its two passes, naming fewer hashes or more, rather than return unwritten bytes', async () => {
    const [a, b] = [`ab${'1'.repeat(62)}`, `ab${'2'.repeat(62)}`];
    const both = `{"entries":[{"sha256":"${a}"},{"sha256":"${b}"}]}`;
    const one = both.replace(`"sha256":"${b}`, `"sha256":_${b}`);
    for (const [before, after] of [
      [both, one],
      [one, both],
    ] as const) {
      const path = await writeSnapshot('edited.bin', before);
      const probe = await open(path, 'r');
      const handle = Object.getPrototypeOf(probe) as { read(...args: unknown[]): Promise<unknown> };
      await probe.close();
      const original = handle.read;
      let reads = 0;
      // Reads: the header, the first pass's one chunk, then the second pass's: the file changes before that one.
      const spy = vi.spyOn(handle, 'read').mockImplementation(async function (this: unknown, ...args: unknown[]) {
        if (++reads === 3) {
          const frame = await readFile(path);
          frame.write(after, 8, 'latin1');
          await writeFile(path, frame);
        }
        return original.apply(this, args);
      });
      try {
        await expect(readSnapshotShas(path)).rejects.toMatchObject({ code: 'METASYNC_ERR_JOURNAL_CORRUPT' });
        expect(reads).toBe(3);
      } finally {
        spy.mockRestore();
      }
    }
  });
});
