import { describe, expect, it } from 'vitest';
import { createBoundedMemo } from './bounded-memo.js';

describe('bounded memo', () => {
  it('never holds more than two generations, however many keys pass through', () => {
    const memo = createBoundedMemo<number, string>(100);
    for (let i = 0; i < 100_000; i++) {
      memo.set(i, String(i));
      expect(memo.size()).toBeLessThanOrEqual(200);
    }
    expect(memo.get(99_999)).toBe('99999');
    expect(memo.get(0)).toBeUndefined();
  });

  it('keeps an entry that is asked for while the long tail streams past', () => {
    const memo = createBoundedMemo<string, number>(50);
    memo.set('hot', 1);
    for (let i = 0; i < 10_000; i++) {
      memo.set(`tail-${i}`, i);
      if (i % 40 === 0) expect(memo.get('hot')).toBe(1);
    }
    expect(memo.get('hot')).toBe(1);
    expect(memo.get('tail-0')).toBeUndefined();
  });

  it('refuses a generation size below one', () => {
    expect(() => createBoundedMemo(0)).toThrow(RangeError);
  });
});
