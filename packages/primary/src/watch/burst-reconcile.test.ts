import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createBurstReconcile, type BurstReconcile } from './burst-reconcile.js';

let reconcile: BurstReconcile;
let touched: string[];
let removed: string[];
let walks: number;

function start(tree: Map<string, number>, tracked: Set<string>, published: string[]): void {
  touched = [];
  removed = [];
  walks = 0;
  reconcile = createBurstReconcile({
    walk: async () => {
      walks++;
      return tree;
    },
    tracks: (path) => tracked.has(path),
    publishedPaths: () => published,
    touch: (path) => touched.push(path),
    remove: (path) => removed.push(path),
    onReconciled: () => undefined,
    onError: (err) => {
      throw err;
    },
    burstEvents: 10,
    quietMs: 100,
  });
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(100_000);
});

afterEach(() => {
  reconcile.close();
  vi.useRealTimers();
});

describe('reconcile after a burst of file events', () => {
  it('walks once the burst goes quiet: touches files no event brought in or modified since the burst began, removes vanished ones', async () => {
    const tree = new Map([
      ['old/untouched.json', 1_000], // tracked, modified long before: left alone
      ['new/missed.json', 100_000], // no event arrived for it
      ['new/changed.json', 100_050], // tracked, but modified during the burst: its change event may be lost
    ]);
    start(tree, new Set(['old/untouched.json', 'new/changed.json']), ['old/untouched.json', 'gone.json']);
    for (let i = 0; i < 10; i++) reconcile.event();
    await vi.advanceTimersByTimeAsync(50);
    reconcile.event(); // still bursting: the walk waits for quiet
    await vi.advanceTimersByTimeAsync(60);
    expect(walks).toBe(0);
    await vi.advanceTimersByTimeAsync(100);
    expect(walks).toBe(1);
    expect(touched.sort()).toEqual(['new/changed.json', 'new/missed.json']);
    expect(removed).toEqual(['gone.json']);
  });

  it('does not walk for events fewer than the burst size, however they spread', async () => {
    start(new Map([['a.json', 100_000]]), new Set(), []);
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 9; i++) reconcile.event();
      await vi.advanceTimersByTimeAsync(150);
    }
    expect(walks).toBe(0);
    expect(touched).toEqual([]);
  });

  it('walks again after a second burst, and never after close', async () => {
    start(new Map([['a.json', 100_000]]), new Set(), []);
    for (let i = 0; i < 10; i++) reconcile.event();
    await vi.advanceTimersByTimeAsync(150);
    for (let i = 0; i < 10; i++) reconcile.event();
    await vi.advanceTimersByTimeAsync(150);
    expect(walks).toBe(2);
    for (let i = 0; i < 10; i++) reconcile.event();
    reconcile.close();
    await vi.advanceTimersByTimeAsync(500);
    expect(walks).toBe(2);
  });
});
