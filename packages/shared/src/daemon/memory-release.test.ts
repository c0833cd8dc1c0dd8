import { getHeapSpaceStatistics } from 'node:v8';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { releaseMemory } from './memory-release.js';

const MIB = 2 ** 20;

function newSpaceBytes(): number {
  const space = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
  if (space === undefined) throw new Error('V8 reports no new_space');
  return space.space_size;
}

/** Allocates as a bulk apply does: many short-lived objects, a few rounds of them alive at once, so V8 grows its young generation. */
function churnYoungObjects(): void {
  let alive: { index: number; text: string }[][] = [];
  for (let round = 0; round < 40; round++) {
    const batch: { index: number; text: string }[] = [];
    for (let index = 0; index < 100_000; index++) batch.push({ index, text: `path-${round}-${index}` });
    alive.push(batch);
    if (alive.length > 3) alive.shift();
  }
  alive = [];
}

describe('releaseMemory', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('shrinks the young generation a bulk apply grew once the caller dropped the batch, not only collects it', () => {
    vi.useFakeTimers();
    churnYoungObjects();
    const grown = newSpaceBytes();
    // The premise: the churn grew the young generation well past its idle size (1-2 MB).
    expect(grown).toBeGreaterThanOrEqual(16 * MIB);
    releaseMemory(1_000);
    vi.advanceTimersByTime(1_000);
    expect(newSpaceBytes()).toBeLessThanOrEqual(Math.min(8 * MIB, grown / 2));
  });
});
