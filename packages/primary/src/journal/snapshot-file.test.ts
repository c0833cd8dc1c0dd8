import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKeyPem, sha256Hex, signBody, signingKeyFromPem, type SigningKey } from '@metasync/shared';
import { encodeRecord, encodeRecordHeader, tempPathFor } from '@metasync/shared/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Manifest } from './manifest.js';
import { encodeSnapshotBody } from './snapshot-body.js';
import { SNAPSHOT_BODY_OFFSET, snapshotFileName } from './snapshot-file.js';
import { SERVED_DIR_NAME } from './snapshot-served.js';
import { loadLatestSnapshot, removeSnapshotLeftovers, signSnapshot } from './snapshots.js';

const key = signingKeyFromPem(generateSigningKeyPem());
const manifest: Manifest = new Map([
  ['p2/a/one.json', { sha256: 'a'.repeat(64), size: 1, mtime: 1, origin: 'watch' }],
  ['p2/a/two.json', { sha256: 'b'.repeat(64), size: 2, mtime: 2, origin: 'api' }],
]);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-snapshot-file-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('snapshot files', () => {
  it('replays from a file written before statements, whose signature covers the body', async () => {
    const paths = [...manifest.keys()].sort();
    const body = encodeSnapshotBody({ seq: 4, time: 9, size: 2, pathAt: (i) => paths[i]!, entryAt: (i) => manifest.get(paths[i]!)! });
    const meta = Buffer.from(JSON.stringify({ signature: signBody(key, body), origins: 'wa' }));
    await writeFile(join(dir, snapshotFileName(4)), Buffer.concat([encodeRecordHeader(body), body, encodeRecord(meta)]));
    const loaded = await loadLatestSnapshot(dir);
    expect(loaded?.seq).toBe(4);
    expect(new Map(loaded?.manifest.entries())).toEqual(manifest);
  });

  it('reads a file in chunks of any size, and refuses one with a byte changed, cut short or with bytes after it', async () => {
    const many: Manifest = new Map();
    for (let i = 0; i < 500; i++)
      many.set(`p2/v${i % 7}/p${i}.json`, { sha256: sha256Hex(String(i)), size: i, mtime: i, origin: i % 2 ? 'api' : 'watch' });
    const written = await signSnapshot({ seq: 3, time: 3, manifest: many, key, dir });
    // Chunks that cut lines anywhere.
    for (const chunkBytes of [1, 7, 100, 4096, 1 << 22]) {
      const loaded = await loadLatestSnapshot(dir, chunkBytes);
      expect(new Map(loaded?.manifest.entries())).toEqual(many);
    }
    const bytes = await readFile(written.path);
    const changed = Buffer.from(bytes);
    changed[SNAPSHOT_BODY_OFFSET + 200]! ^= 0x01;
    await writeFile(written.path, changed);
    await expect(loadLatestSnapshot(dir, 64)).rejects.toMatchObject({ code: 'METASYNC_ERR_JOURNAL_CORRUPT' });
    await writeFile(written.path, bytes.subarray(0, bytes.length - 300));
    await expect(loadLatestSnapshot(dir, 64)).rejects.toMatchObject({ code: 'METASYNC_ERR_JOURNAL_CORRUPT' });
    await writeFile(written.path, Buffer.concat([bytes, Buffer.from('junk')]));
    await expect(loadLatestSnapshot(dir, 64)).rejects.toMatchObject({ code: 'METASYNC_ERR_JOURNAL_CORRUPT' });
    // A crafted body length: past any record (refused before anything is allocated for it), or past the file.
    for (const length of [0xffffffff, bytes.length]) {
      const crafted = Buffer.from(bytes);
      crafted.writeUInt32BE(length, 0);
      await writeFile(written.path, crafted);
      await expect(loadLatestSnapshot(dir, 64)).rejects.toMatchObject({ code: 'METASYNC_ERR_JOURNAL_CORRUPT' });
    }
  });

  it('leaves nothing behind when a write fails, and start-up clears what a crash left mid-write', async () => {
    const broken = { ...key, privateKey: 'not a key' } as unknown as SigningKey;
    await expect(signSnapshot({ seq: 1, time: 1, manifest, key: broken, dir })).rejects.toThrow();
    expect(await readdir(dir)).toEqual([]);
    const written = await signSnapshot({ seq: 2, time: 2, manifest, key, dir });
    // What a SIGKILL between the first chunk and the rename leaves, and what was served to mirrors.
    await writeFile(tempPathFor(join(dir, snapshotFileName(3))), 'partial');
    await mkdir(join(dir, SERVED_DIR_NAME));
    await writeFile(join(dir, SERVED_DIR_NAME, `snapshot-0000000000000002.${written.sha256.slice(0, 16)}.gz`), 'gz');
    await removeSnapshotLeftovers(dir);
    expect(await readdir(dir)).toEqual([snapshotFileName(2)]);
    expect((await loadLatestSnapshot(dir))?.seq).toBe(2);
  });
});
