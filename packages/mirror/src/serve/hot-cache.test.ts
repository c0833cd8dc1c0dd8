import { describe, expect, it } from 'vitest';
import { createHotCache } from './hot-cache.js';

describe('hot cache', () => {
  it('evicts the least recently used bodies to stay within its byte budget', () => {
    const cache = createHotCache(800);
    cache.set('a', Buffer.alloc(100));
    cache.set('b', Buffer.alloc(100));
    expect(cache.get('a')).toBeDefined();
    for (let i = 0; i < 7; i++) cache.set(`c${i}`, Buffer.alloc(100));
    expect(cache.bytes).toBeLessThanOrEqual(800);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBeDefined();
  });

  it('refuses bodies larger than an eighth of the budget', () => {
    const cache = createHotCache(800);
    expect(cache.admits(100)).toBe(true);
    expect(cache.admits(101)).toBe(false);
    cache.set('big', Buffer.alloc(101));
    expect(cache.get('big')).toBeUndefined();
  });

  it('holds nothing with a zero budget', () => {
    const cache = createHotCache(0);
    cache.set('a', Buffer.alloc(1));
    expect(cache.size).toBe(0);
  });
});

describe('hot cache clock', () => {
  it('gives a body read since the hand last passed a second chance, and evicts it once it stops being read', () => {
    const cache = createHotCache(800);
    for (let i = 0; i < 8; i++) cache.set(`k${i}`, Buffer.alloc(100));
    expect(cache.get('k0')).toBeDefined();
    cache.set('k8', Buffer.alloc(100));
    expect(cache.get('k1')).toBeUndefined();
    expect(cache.size).toBe(8);
    // k0 was read once (just above, before k8): unread from now on, the hand takes it within two sweeps.
    for (let i = 9; i < 30; i++) cache.set(`k${i}`, Buffer.alloc(100));
    expect(cache.get('k0')).toBeUndefined();
    expect(cache.bytes).toBe(800);
  });

  it('stays within budget over many inserts of varied sizes', () => {
    const cache = createHotCache(10_000);
    for (let i = 0; i < 5_000; i++) {
      cache.set(`k${i}`, Buffer.alloc(1 + ((i * 7919) % 1250)));
      if (i % 3 === 0) cache.get(`k${i - 1}`);
      expect(cache.bytes).toBeLessThanOrEqual(10_000);
    }
  });
});
