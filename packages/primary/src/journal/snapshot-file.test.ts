import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKeyPem, signBody, signingKeyFromPem, type SigningKey } from '@metasync/shared';
import { encodeRecord, encodeRecordHeader } from '@metasync/shared/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Manifest } from './manifest.js';
import { encodeSnapshotBody } from './snapshot-body.js';
import { snapshotFileName } from './snapshot-file.js';
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

  it('leaves nothing behind when a write fails, and start-up clears what a crash left mid-write', async () => {
    const broken = { ...key, privateKey: 'not a key' } as unknown as SigningKey;
    await expect(signSnapshot({ seq: 1, time: 1, manifest, key: broken, dir })).rejects.toThrow();
    expect(await readdir(dir)).toEqual([]);
    const written = await signSnapshot({ seq: 2, time: 2, manifest, key, dir });
    // What a SIGKILL between the first chunk and the rename leaves, and a gzip made for serving.
    await writeFile(join(dir, `.tmp-${snapshotFileName(3)}-123-abcd`), 'partial');
    await writeFile(join(dir, `snapshot-0000000000000002.${written.sha256.slice(0, 16)}.gz`), 'gz');
    await removeSnapshotLeftovers(dir);
    expect(await readdir(dir)).toEqual([snapshotFileName(2)]);
    expect((await loadLatestSnapshot(dir))?.seq).toBe(2);
  });
});
