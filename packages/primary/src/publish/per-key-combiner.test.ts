import { describe, expect, it } from 'vitest';
import { createKeyedBatcher } from './per-key-combiner.js';

describe('keyed batcher', () => {
  it('runs one batch per key at a time and hands queued operations over together', async () => {
    const batches: Array<{ key: string; ops: number[] }> = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const enqueue = createKeyedBatcher<number, number>(async (key, batch) => {
      batches.push({ key, ops: batch.map((item) => item.op) });
      if (batches.length === 1) await gate;
      for (const item of batch) item.resolve(item.op * 10);
    });
    const first = enqueue('a', 1);
    const queued = [enqueue('a', 2), enqueue('a', 3), enqueue('b', 4)];
    release();
    expect(await Promise.all([first, ...queued])).toEqual([10, 20, 30, 40]);
    expect(batches).toEqual([
      { key: 'a', ops: [1] },
      { key: 'b', ops: [4] },
      { key: 'a', ops: [2, 3] },
    ]);
  });

  it('rejects what a failing runner left unsettled and keeps serving the key', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const enqueue = createKeyedBatcher<string, string>(async (_key, batch) => {
      if (batch[0]?.op === 'a') await gate;
      batch[0]?.resolve(batch[0].op);
      if (batch.length > 1) throw new Error('disk full');
    });
    const a = enqueue('k', 'a');
    const b = enqueue('k', 'b');
    const c = enqueue('k', 'c');
    release();
    expect(await Promise.allSettled([a, b, c])).toEqual([
      { status: 'fulfilled', value: 'a' },
      { status: 'fulfilled', value: 'b' },
      { status: 'rejected', reason: new Error('disk full') },
    ]);
    expect(await enqueue('k', 'd')).toBe('d');
  });
});
