import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '@metasync/shared';
import { encodeRecord } from '@metasync/shared/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Journal } from '../journal/journal.js';
import { createManifest } from '../journal/manifest.js';
import { snapshotFileName } from '../journal/snapshots.js';
import { createGcRoots } from './gc-roots.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-gc-roots-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const journal = { oldestSeq: () => 0, generationsAfter: () => [], forEachKeptObject: () => undefined } as unknown as Journal;
const everyShard = new Uint8Array(256).fill(1);

/** A snapshot file as snapshots.ts writes it: the body record, then the meta record. */
async function writeSnapshot(seq: number, body: string): Promise<void> {
  const meta = Buffer.from(JSON.stringify({ signature: 'k.s', origins: 'w' }));
  await writeFile(join(dir, snapshotFileName(seq)), Buffer.concat([encodeRecord(Buffer.from(body)), encodeRecord(meta)]));
}

const line = (sha256: string): string => `{"path":"p2/a.json","sha256":"${sha256}","size":1,"mtime":1}`;

describe('object GC roots from snapshot files', () => {
  it('takes every hash a snapshot names, by shard, and only those of the masked shards', async () => {
    const shas = Array.from({ length: 300 }, (_, i) => sha256Hex(String(i)));
    await writeSnapshot(3, `{"kind":"snapshot","seq":3,"time":3,"entries":[\n${shas.map(line).join(',\n')}\n]}`);
    const roots = createGcRoots({ manifest: createManifest(), journal, snapshotDir: dir });
    const all = await roots.collect(everyShard);
    for (const sha of shas) expect(all.has(sha)).toBe(true);
    const others = Array.from({ length: 300 }, (_, i) => sha256Hex(`not named ${i}`));
    for (const sha of others) expect(all.has(sha)).toBe(false);
    const shard = shas[0]!.slice(0, 2);
    const firstShardOnly = new Uint8Array(256);
    firstShardOnly[Number.parseInt(shard, 16)] = 1;
    const one = await roots.collect(firstShardOnly);
    for (const sha of shas) expect(one.has(sha)).toBe(sha.startsWith(shard));
  });

  it("counts a hash whose leading 9 bytes are a snapshot root's as a root: a false match only keeps an object", async () => {
    const root = sha256Hex('root');
    await writeSnapshot(3, `{"kind":"snapshot","seq":3,"time":3,"entries":[\n${line(root)}\n]}`);
    const roots = await createGcRoots({ manifest: createManifest(), journal, snapshotDir: dir }).collect(everyShard);
    const sameLead = root.slice(0, 18) + (root[18] === '0' ? '1' : '0') + root.slice(19);
    const otherAt17 = root.slice(0, 17) + (root[17] === '0' ? '1' : '0') + root.slice(18);
    expect(roots.has(sameLead)).toBe(true);
    expect(roots.has(otherAt17)).toBe(false);
  });

  it('refuses a snapshot naming a malformed hash, or one cut short at the end of the file', async () => {
    await writeSnapshot(4, `{"kind":"snapshot","seq":4,"time":4,"entries":[\n${line('Z'.repeat(64))}\n]}`);
    const roots = createGcRoots({ manifest: createManifest(), journal, snapshotDir: dir });
    await expect(roots.collect(everyShard)).rejects.toMatchObject({ code: 'METASYNC_ERR_JOURNAL_CORRUPT' });
    await rm(join(dir, snapshotFileName(4)));
    await writeSnapshot(5, `{"kind":"snapshot","seq":5,"time":5,"entries":[{"sha256":"${'ab'.repeat(20)}`);
    await expect(createGcRoots({ manifest: createManifest(), journal, snapshotDir: dir }).collect(everyShard)).rejects.toMatchObject({
      code: 'METASYNC_ERR_JOURNAL_CORRUPT',
    });
  });
});
