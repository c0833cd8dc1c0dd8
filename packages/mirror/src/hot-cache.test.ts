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
