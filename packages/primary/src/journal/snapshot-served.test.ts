import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../../test/helpers/wait-for.js';
import { randomBytes } from 'node:crypto';
import { SNAPSHOT_BODY_OFFSET, snapshotFileName, type SignedSnapshot } from './snapshot-file.js';
import { gzipPathOf, keepAsReplayBase, makeGzipFile, retireLater } from './snapshot-served.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-snapshot-served-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function servedAt(seq: number): SignedSnapshot {
  return { seq, time: 1, path: join(dir, snapshotFileName(seq)), length: 2, sha256: 'ab'.repeat(32), statement: 's', signature: 'k.s' };
}

describe('served snapshot files', () => {
  it('removes a replaced file and its gzip only after the wait, and nothing else', async () => {
    const old = servedAt(1);
    await writeFile(old.path, 'old');
    await writeFile(gzipPathOf(old), 'gz');
    await writeFile(servedAt(2).path, 'new');
    retireLater(old, 300);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await readdir(dir)).toHaveLength(3);
    await waitFor(async () => (await readdir(dir)).length === 1, { timeoutMs: 5_000, what: 'the retired files removed' });
    expect(await readdir(dir)).toEqual([snapshotFileName(2)]);
  });

  it('makes a replay base a link of the served file, replacing one of the same seq whole', async () => {
    const served = join(dir, 'served');
    await mkdir(served);
    const snapshot = { ...servedAt(3), path: join(served, snapshotFileName(3)) };
    await writeFile(snapshot.path, 'signed');
    await writeFile(join(dir, snapshotFileName(3)), 'an earlier signing of seq 3');
    const path = await keepAsReplayBase(snapshot, dir);
    expect(path).toBe(join(dir, snapshotFileName(3)));
    expect(await readFile(path, 'utf8')).toBe('signed');
    expect((await readdir(dir)).filter((name) => name.startsWith('.'))).toEqual([]);
  });

  it('removes a gzip that was still being made when its snapshot was retired', async () => {
    // Incompressible, so the gzip takes a while: the retirement comes while it is under way.
    const body = randomBytes(24 * 2 ** 20);
    const snapshot = { ...servedAt(4), length: body.length };
    await writeFile(snapshot.path, Buffer.concat([Buffer.alloc(SNAPSHOT_BODY_OFFSET), body]));
    const making = makeGzipFile(snapshot);
    making.catch(() => undefined);
    await waitFor(async () => (await readdir(dir)).some((name) => name.includes('.gz')), { timeoutMs: 10_000, what: 'the gzip under way' });
    retireLater(snapshot, 0);
    await expect(making).rejects.toThrow(/retired while its gzip was made/);
    expect(await readdir(dir)).toEqual([]);
  });
});
