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
  it('takes every hash a snapshot names, packed by shard, and only those of the masked shards', async () => {
    const shas = Array.from({ length: 300 }, (_, i) => sha256Hex(String(i)));
    await writeSnapshot(3, `{"kind":"snapshot","seq":3,"time":3,"entries":[\n${shas.map(line).join(',\n')}\n]}`);
    const roots = createGcRoots({ manifest: createManifest(), journal, snapshotDir: dir });
    expect([...(await roots.collect(everyShard))].sort()).toEqual([...shas].sort());
    const firstShardOnly = new Uint8Array(256);
    firstShardOnly[Number.parseInt(shas[0]!.slice(0, 2), 16)] = 1;
    expect([...(await roots.collect(firstShardOnly))].sort()).toEqual(
      shas.filter((sha) => sha.slice(0, 2) === shas[0]!.slice(0, 2)).sort(),
    );
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
