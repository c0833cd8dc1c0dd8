import { describe, expect, it } from 'vitest';
import { createHotCache as createHotCacheCharged } from './hot-cache.js';

const body = (length: number, fill: number) => Buffer.alloc(length, fill);
/** Segment mechanics with budgets of a few bodies: bookkeeping left out (its own test below). */
const createHotCache = (budgetBytes: number) => createHotCacheCharged(budgetBytes, { bookkeepingBytesPerBody: 0 });

describe('hot cache', () => {
  it("counts each body's bookkeeping against the budget, so many small bodies leave room for fewer segments", () => {
    // Segments of 10,000 bytes; a full one holds 100 bodies of 100 bytes and 100 x 100 bytes of bookkeeping.
    const cache = createHotCacheCharged(80_000, { bookkeepingBytesPerBody: 100 });
    for (let i = 0; i < 2_000; i++) cache.set(`k${i}`, 'gzip', body(100, i % 251));
    // Bodies alone would fill all eight segments (800); with bookkeeping about half of that fits. The segment
    // being filled may run past the budget by its own bookkeeping until the next rotation.
    expect(cache.size).toBeLessThan(600);
    expect(cache.bytes + cache.size * 100).toBeLessThanOrEqual(80_000 + 100 * 100);
    expect(cache.get('k1999', 'gzip')).toEqual(body(100, 1999 % 251));
  });

  it('stays within its byte budget and drops the oldest unread bodies first', () => {
    // 800 bytes: eight segments of 100, one body each.
    const cache = createHotCache(800);
    cache.set('a', 'gzip', body(100, 1));
    cache.set('b', 'gzip', body(100, 2));
    expect(cache.get('a', 'gzip')).toBeDefined();
    for (let i = 0; i < 7; i++) cache.set(`c${i}`, 'gzip', body(100, 3));
    expect(cache.bytes).toBeLessThanOrEqual(800);
    expect(cache.get('b', 'gzip')).toBeUndefined();
    expect(cache.get('a', 'gzip')).toEqual(body(100, 1));
  });

  it('stays within its budget, bookkeeping included, when the bodies it takes get smaller', () => {
    const budget = 8 * 2 ** 20; // segments of 1 MiB
    const cache = createHotCacheCharged(budget, { bookkeepingBytesPerBody: 280 });
    for (let i = 0; i < 10_000; i++) cache.set(`big${i}`, 'gzip', body(1_000, 1));
    let worst = 0;
    for (let i = 0; i < 200_000; i++) {
      cache.set(`small${i}`, 'gzip', body(20, 2));
      // What the cache surely holds: its bodies' bytes and their bookkeeping (segments' unused room not counted).
      worst = Math.max(worst, cache.bytes + cache.size * 280);
    }
    expect(worst).toBeLessThanOrEqual(budget);
    expect(cache.get('small199999', 'gzip')).toEqual(body(20, 2));
  });

  it('keys variants apart', () => {
    const cache = createHotCache(8_000);
    cache.set('a', 'gzip', body(10, 1));
    cache.set('a', 'br', body(10, 2));
    expect(cache.get('a', 'gzip')).toEqual(body(10, 1));
    expect(cache.get('a', 'br')).toEqual(body(10, 2));
    expect(cache.get('a', 'identity')).toBeUndefined();
  });

  it('refuses bodies larger than an eighth of the budget', () => {
    const cache = createHotCache(800);
    expect(cache.admits(100)).toBe(true);
    expect(cache.admits(101)).toBe(false);
    expect(cache.reserve(101)).toBeUndefined();
    cache.set('big', 'identity', body(101, 0));
    expect(cache.get('big', 'identity')).toBeUndefined();
  });

  it('keeps segments at 1 MiB however large the budget, so a stuck response pins at most that much', () => {
    const cache = createHotCache(1024 * 1024 * 1024);
    const room = cache.reserve(100)!;
    expect(room.buffer.byteLength).toBe(1024 * 1024);
    expect(cache.admits(1024 * 1024)).toBe(true);
    expect(cache.admits(1024 * 1024 + 1)).toBe(false);
  });

  it('holds nothing with a zero budget', () => {
    const cache = createHotCache(0);
    expect(cache.reserve(1)).toBeUndefined();
    cache.set('a', 'identity', body(1, 0));
    expect(cache.size).toBe(0);
  });

  it('files the room it reserved without a copy, and copies any other buffer in', () => {
    const cache = createHotCache(8_000);
    const room = cache.reserve(4)!;
    room.write('abcd');
    cache.set('read', 'identity', room);
    const held = cache.get('read', 'identity')!;
    expect(held.buffer).toBe(room.buffer);
    expect(held.byteOffset).toBe(room.byteOffset);
    const source = Buffer.from('wxyz');
    cache.set('copied', 'identity', source);
    source.write('0000');
    expect(cache.get('copied', 'identity')!.toString()).toBe('wxyz');
    expect(cache.get('read', 'identity')!.toString()).toBe('abcd');
  });

  it('never writes over a body a response may still be sending, even after evicting it', () => {
    const cache = createHotCache(800);
    cache.set('sent', 'gzip', body(100, 7));
    const inFlight = cache.get('sent', 'gzip')!;
    // Fill and rotate every segment several times over without reading 'sent' again.
    for (let i = 0; i < 40; i++) cache.set(`k${i}`, 'gzip', body(100, 9));
    expect(cache.get('sent', 'gzip')).toBeUndefined();
    expect(inFlight).toEqual(body(100, 7));
  });

  it('gives a body read since it was filed a second chance, and evicts it once it stops being read', () => {
    const cache = createHotCache(800);
    for (let i = 0; i < 8; i++) cache.set(`k${i}`, 'gzip', body(100, i));
    expect(cache.get('k0', 'gzip')).toBeDefined();
    cache.set('k8', 'gzip', body(100, 8));
    expect(cache.get('k1', 'gzip')).toBeUndefined();
    expect(cache.get('k0', 'gzip')).toEqual(body(100, 0));
    expect(cache.size).toBe(8);
    // Unread from now on: the next rotations take it.
    for (let i = 9; i < 30; i++) cache.set(`k${i}`, 'gzip', body(100, i));
    expect(cache.get('k0', 'gzip')).toBeUndefined();
    expect(cache.bytes).toBeLessThanOrEqual(800);
  });

  it('stays within budget over many inserts of varied sizes, and every body it returns is the one filed', () => {
    const cache = createHotCache(10_000);
    for (let i = 0; i < 5_000; i++) {
      const length = 1 + ((i * 7919) % 1250);
      cache.set(`k${i}`, 'gzip', body(length, i % 251));
      if (i % 3 === 0) {
        const earlier = cache.get(`k${i - 1}`, 'gzip');
        if (earlier !== undefined && !earlier.equals(body(1 + (((i - 1) * 7919) % 1250), (i - 1) % 251)))
          throw new Error(`k${i - 1}: wrong bytes`);
      }
      if (cache.bytes > 10_000) throw new Error(`over budget after k${i}: ${cache.bytes} bytes`);
    }
    for (let i = 4_990; i < 5_000; i++) {
      const held = cache.get(`k${i}`, 'gzip');
      if (held !== undefined) expect(held).toEqual(body(1 + ((i * 7919) % 1250), i % 251));
    }
    expect(cache.size).toBeGreaterThan(0);
  });
});
