import { describe, expect, it } from 'vitest';
import { createHandOffs } from './hand-offs.js';

/** A promise and its resolve/reject, settled by the test. */
function later(): { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const flushed = () => new Promise((resolve) => setImmediate(resolve));

describe('hand-offs', () => {
  it('lets at most `limit` be pending: add waits once the limit is reached, until one settles', async () => {
    const handOffs = createHandOffs(2);
    const [a, b] = [later(), later()];
    await handOffs.add(a.promise);
    let admitted = false;
    void handOffs.add(b.promise).then(() => (admitted = true));
    await flushed();
    expect(admitted).toBe(false);
    a.resolve();
    await flushed();
    expect(admitted).toBe(true);
    b.resolve();
    await handOffs.settled();
    expect(handOffs.failure).toBeUndefined();
  });

  it('keeps the first failure, and settled waits for every piece, failed or not', async () => {
    const handOffs = createHandOffs(8);
    const pieces = [later(), later(), later()];
    for (const piece of pieces) await handOffs.add(piece.promise);
    pieces[1]!.reject(new Error('first'));
    pieces[2]!.reject(new Error('second'));
    let settled = false;
    const waiting = handOffs.settled().then(() => (settled = true));
    await flushed();
    expect(settled).toBe(false);
    expect((handOffs.failure as Error).message).toBe('first');
    pieces[0]!.resolve();
    await waiting;
    expect(settled).toBe(true);
  });
});
