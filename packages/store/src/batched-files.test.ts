import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BATCH_FROM, createBatchedFiles, type BatchedFiles } from './batched-files.js';

let dir: string;
let creator: BatchedFiles;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-file-creator-'));
  creator = createBatchedFiles();
});
afterEach(async () => {
  vi.useRealTimers();
  await creator.close();
  await rm(dir, { recursive: true, force: true });
});

const bytesOf = (i: number) => Buffer.from(`file ${i} `.repeat(i + 1));

describe('batched file creates and reads', () => {
  it('creates a burst of files on its thread, each with its own bytes, and a few through the pool', async () => {
    const burst = Array.from({ length: 300 }, (_, i) => creator.create(join(dir, `f${i}`), bytesOf(i)));
    await Promise.all(burst);
    expect(creator.counts()).toEqual({ viaThread: 300, viaPool: 0 });
    for (const i of [0, 1, 150, 299]) expect(await readFile(join(dir, `f${i}`))).toEqual(bytesOf(i));

    await creator.close();
    creator = createBatchedFiles();
    await Promise.all([creator.create(join(dir, 'a'), bytesOf(1)), creator.create(join(dir, 'b'), Buffer.alloc(0))]);
    expect(creator.counts()).toEqual({ viaThread: 0, viaPool: 2 });
    expect(await readFile(join(dir, 'b'))).toEqual(Buffer.alloc(0));
  });

  it('copies bytes that are views into a larger buffer: only the view is written', async () => {
    const shared = Buffer.from('0123456789'.repeat(100));
    await Promise.all(
      Array.from({ length: BATCH_FROM }, (_, i) => creator.create(join(dir, `v${i}`), shared.subarray(i * 10, i * 10 + 5))),
    );
    expect(creator.counts().viaThread).toBe(BATCH_FROM);
    expect((await readFile(join(dir, 'v3'))).toString()).toBe('01234');
  });

  it('rejects each failed create with the errno fields writeFile gives, and the rest of its batch is created', async () => {
    await writeFile(join(dir, 'taken'), 'old');
    const outcomes = await Promise.allSettled([
      creator.create(join(dir, 'taken'), bytesOf(1)),
      creator.create(join(dir, 'missing-dir', 'x'), bytesOf(2)),
      ...Array.from({ length: BATCH_FROM }, (_, i) => creator.create(join(dir, `ok${i}`), bytesOf(i))),
    ]);
    expect(creator.counts().viaThread).toBe(BATCH_FROM + 2);
    expect(outcomes[0]).toMatchObject({ status: 'rejected', reason: { code: 'EEXIST', syscall: 'open', path: join(dir, 'taken') } });
    expect(outcomes[1]).toMatchObject({ status: 'rejected', reason: { code: 'ENOENT', path: join(dir, 'missing-dir', 'x') } });
    expect(outcomes.slice(2).every((outcome) => outcome.status === 'fulfilled')).toBe(true);
    // Never over an existing file.
    expect(await readFile(join(dir, 'taken'), 'utf8')).toBe('old');
  });

  it('reads a burst of files on its thread, each into a buffer of its own; a missing file reads as undefined', async () => {
    await Promise.all(Array.from({ length: 40 }, (_, i) => writeFile(join(dir, `r${i}`), bytesOf(i))));
    const reads = await Promise.all([
      ...Array.from({ length: 40 }, (_, i) => creator.read(join(dir, `r${i}`))),
      creator.read(join(dir, 'absent')),
      creator.read(dir).catch((err: unknown) => err),
    ]);
    expect(creator.counts()).toEqual({ viaThread: 42, viaPool: 0 });

    for (const i of [0, 17, 39]) expect(reads[i]).toEqual(bytesOf(i));
    expect(reads[40]).toBeUndefined();
    expect(reads[41]).toMatchObject({ code: 'EISDIR', path: dir });
    // Copied out of the answer: a large file's buffer is its own (smaller ones come from Node's buffer pool).
    await writeFile(join(dir, 'large'), Buffer.alloc(200_000, 7));
    const [large] = await Promise.all(
      ['large', ...Array.from({ length: 10 }, (_, i) => `r${i}`)].map((name) => creator.read(join(dir, name))),
    );
    expect(large!.buffer.byteLength).toBe(200_000);

    await creator.close();
    creator = createBatchedFiles();
    expect(await creator.read(join(dir, 'r3'))).toEqual(bytesOf(3));
    expect(await creator.read(join(dir, 'absent'))).toBeUndefined();
    expect(creator.counts()).toEqual({ viaThread: 0, viaPool: 2 });
  });

  it('a batch handed to a new thread is not failed by the exit of the thread stopped for idleness', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const burst = (prefix: string) =>
      Promise.allSettled(
        Array.from({ length: BATCH_FROM }, (_, i) => creator.create(join(dir, `${prefix}${i}`), Buffer.from(`${prefix}${i}`))),
      );
    await burst('a');
    // The idle thread is terminated; its exit comes a few ms later, while a new thread has this batch.
    vi.advanceTimersByTime(5_000);
    const outcomes = await burst('b');
    expect(outcomes.map((outcome) => outcome.status)).toEqual(Array(BATCH_FROM).fill('fulfilled'));
    expect(await readFile(join(dir, 'b7'), 'utf8')).toBe('b7');
  });

  it('kept: the thread runs from the start, takes even a single file, and stays past the idle time until close', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    await creator.close();
    creator = createBatchedFiles({ kept: true });
    await creator.create(join(dir, 'one'), bytesOf(1));
    vi.advanceTimersByTime(60_000);
    expect(await creator.read(join(dir, 'one'))).toEqual(bytesOf(1));
    expect(creator.counts()).toEqual({ viaThread: 2, viaPool: 0 });
    await creator.close();
    await creator.create(join(dir, 'two'), bytesOf(2));
    expect(creator.counts()).toEqual({ viaThread: 2, viaPool: 1 });
  });

  it('close waits for creates handed to the thread', async () => {
    const burst = Array.from({ length: 100 }, (_, i) => creator.create(join(dir, `c${i}`), bytesOf(i)));
    await new Promise((resolve) => setImmediate(resolve));
    await creator.close();
    expect((await Promise.allSettled(burst)).every((outcome) => outcome.status === 'fulfilled')).toBe(true);
    expect(await readFile(join(dir, 'c99'))).toEqual(bytesOf(99));
  });

  it.each([false, true])('keeps a process alive while creates are in flight, and not once it is idle (kept: %s)', async (kept) => {
    await mkdir(join(dir, 'child'));
    const script = `
      import { createBatchedFiles } from ${JSON.stringify(new URL('./batched-files.ts', import.meta.url).pathname)};
      const creator = createBatchedFiles({ kept: ${kept} });
      await Promise.all(Array.from({ length: 2000 }, (_, i) => creator.create(${JSON.stringify(join(dir, 'child'))} + '/f' + i, Buffer.alloc(512, i))));
      console.log(JSON.stringify(creator.counts()));
    `;
    const started = Date.now();
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      timeout: 20_000,
    });
    expect(JSON.parse(stdout)).toEqual({ viaThread: 2000, viaPool: 0 });
    // An idle thread (kept for good, or until 5 s idle) does not hold the process: it exits well before.
    expect(Date.now() - started).toBeLessThan(4_500);
    expect(await readFile(join(dir, 'child', 'f1999'))).toEqual(Buffer.alloc(512, 1999));
  });
});
