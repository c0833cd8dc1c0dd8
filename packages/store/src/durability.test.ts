import * as childProcess from 'node:child_process';
import * as fsPromises from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import { sha256Hex } from '@metasync/shared';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createDurability, SYNCFS_THRESHOLD_FILES } from './durability.js';
import { openObjectStore, type ObjectStore } from './store.js';

// The real execFile, counted: `sync -f` is the syncfs path, so its calls say which path a sync took.
vi.mock('node:child_process', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:child_process')>();
  return { ...actual, execFile: vi.fn(actual.execFile) };
});
// The real open, counted: each fsync (file or directory) opens its path once.
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return { ...actual, open: vi.fn(actual.open) };
});
const execFile = vi.mocked(childProcess.execFile);
const open = vi.mocked(fsPromises.open);

let dir: string;
let store: ObjectStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-store-sync-'));
  store = await openObjectStore({ dir });
  execFile.mockClear();
  open.mockClear();
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const objectOf = (i: number) => Buffer.from(JSON.stringify({ n: i, text: 'compressible '.repeat(20) }));

describe('store durability', () => {
  it('fsyncs a few new files one by one, with their shard directories and the top directory, then has nothing pending', async () => {
    await store.put({ raw: objectOf(1) });
    // gzip + br (an object keeping a gzip variant has no raw file); the shard directory, and the top directory that gained it.
    expect(store.unsynced()).toEqual({ files: 2, dirs: 2 });
    open.mockClear();
    await store.sync();
    expect(execFile).not.toHaveBeenCalled();
    const shard = join(
      dir,
      store
        .pathOf(sha256Hex(objectOf(1)))
        .split('/')
        .at(-2)!,
    );
    expect(open.mock.calls.map((call) => call[0]).sort()).toEqual(
      [store.pathOf(sha256Hex(objectOf(1)), 'gzip'), store.pathOf(sha256Hex(objectOf(1)), 'br'), shard, dir].sort(),
    );
    expect(store.unsynced()).toEqual({ files: 0, dirs: 0 });
  });

  it('uses one syncfs after many new files, then has nothing pending', async () => {
    const count = Math.ceil(SYNCFS_THRESHOLD_FILES / 2) + 1;
    await Promise.all(Array.from({ length: count }, (_, i) => store.put({ raw: objectOf(i) })));
    expect(store.unsynced().files).toBeGreaterThan(SYNCFS_THRESHOLD_FILES);
    await store.sync();
    expect(execFile).toHaveBeenCalledTimes(1);
    expect(execFile.mock.calls[0]?.slice(0, 2)).toEqual(['sync', ['-f', dir]]);
    expect(store.unsynced()).toEqual({ files: 0, dirs: 0 });
  });

  it('does not fsync the top directory when no shard directory was created', async () => {
    const { sha256 } = await store.put({ raw: objectOf(1) });
    await store.sync();
    await store.remove(sha256);
    expect((await store.put({ raw: objectOf(1) })).created).toBe(true);
    // The shard exists already: its directory changed, the top directory did not.
    expect(store.unsynced()).toEqual({ files: 2, dirs: 1 });
  });

  it('keeps a failed sync batch pending, so the next sync covers it', async () => {
    await Promise.all(Array.from({ length: 40 }, (_, i) => store.put({ raw: objectOf(i) })));
    const before = store.unsynced();
    execFile.mockImplementationOnce(((...args: unknown[]) => {
      const callback = args.at(-1) as (err: Error) => void;
      callback(Object.assign(new Error('sync: EIO'), { code: 'EIO' }));
      return {} as childProcess.ChildProcess;
    }) as unknown as typeof childProcess.execFile);
    await expect(store.sync()).rejects.toThrow('EIO');
    expect(store.unsynced()).toEqual(before);
    await store.sync();
    expect(store.unsynced()).toEqual({ files: 0, dirs: 0 });
  });

  it('names at most the files a syncfs needs no names for: a bulk write of 200,000 files holds no string per file', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const durability = createDurability(dir);
    const heapUsed = () => {
      gc();
      return process.memoryUsage().heapUsed;
    };
    const before = heapUsed();
    for (let i = 0; i < 200_000; i++) {
      const sha256 = sha256Hex(String(i));
      durability.fileWritten(join(dir, sha256.slice(0, 2), `${sha256.slice(2)}.gz`), sha256.slice(0, 2));
    }
    // Named (the code before), they held 90 MB of path strings and set entries until the sync.
    expect(heapUsed() - before).toBeLessThan(2_000_000);
    expect(durability.pending()).toEqual({ files: 200_000, dirs: 256 });
    await durability.sync();
    expect(execFile.mock.calls[0]?.slice(0, 2)).toEqual(['sync', ['-f', dir]]);
    expect(durability.pending()).toEqual({ files: 0, dirs: 0 });
  });

  it('syncs nothing twice: puts after a sync form the next batch', async () => {
    await store.put({ raw: objectOf(1) });
    await store.sync();
    await store.put({ raw: objectOf(2) });
    expect(store.unsynced().files).toBe(2);
  });
});
