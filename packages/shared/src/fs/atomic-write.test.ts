import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { inSteps, SYNC_STEP_BYTES, writeFileAtomic } from './atomic-write.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-atomic-write-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

describe('atomic writes in sync steps', () => {
  it('cuts parts into runs of at most the step, in order, without losing a byte', () => {
    const parts = [Buffer.from('abcde'), Buffer.alloc(0), Buffer.from('fgh'), Buffer.from('ijklmnopq')];
    const steps = inSteps(parts, 4);
    expect(steps.map((step) => Buffer.concat(step).toString())).toEqual(['abcd', 'efgh', 'ijkl', 'mnop', 'q']);
    expect(inSteps([], 4)).toEqual([[]]);
  });

  it('syncs a large durable write every step, and writes exactly its bytes', async () => {
    const probe = await open(join(dir, 'probe'), 'w');
    const fileHandle = Object.getPrototypeOf(probe) as { datasync(): Promise<void> };
    await probe.close();
    const datasync = vi.spyOn(fileHandle, 'datasync');
    const big = Buffer.alloc(SYNC_STEP_BYTES * 2 + 123, 7);
    big[SYNC_STEP_BYTES] = 1;
    const path = join(dir, 'big.bin');
    await writeFileAtomic(path, [Buffer.from('head'), big]);
    expect(datasync).toHaveBeenCalledTimes(2);
    const written = await readFile(path);
    expect(written.length).toBe(4 + big.length);
    expect(written.subarray(4).equals(big)).toBe(true);
    datasync.mockClear();
    await writeFileAtomic(join(dir, 'small.txt'), 'small');
    expect(datasync).not.toHaveBeenCalled();
    expect(await readFile(join(dir, 'small.txt'), 'utf8')).toBe('small');
  });
});
