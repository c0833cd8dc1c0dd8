import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../../test/helpers/wait-for.js';
import { snapshotFileName, type SignedSnapshot } from './snapshot-file.js';
import { gzipPathOf, keepAsReplayBase, retireLater } from './snapshot-served.js';

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
});
