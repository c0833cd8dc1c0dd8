import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createBurstReconcile, type BurstReconcile } from './burst-reconcile.js';

let reconcile: BurstReconcile;
let touched: string[];
let removed: string[];
let walks: number;

/** A walk of `tree` as tree-walk.ts gives it: its files in directory-sized batches (two here). */
function walkOf(tree: Map<string, number>) {
  return async (onFiles: (files: ReadonlyArray<readonly [string, number]>) => Promise<void>): Promise<number> => {
    const entries = [...tree];
    const half = Math.ceil(entries.length / 2);
    await onFiles(entries.slice(0, half));
    await onFiles(entries.slice(half));
    return entries.length;
  };
}

function start(tree: Map<string, number>, tracked: Set<string>, published: string[]): void {
  touched = [];
  removed = [];
  walks = 0;
  reconcile = createBurstReconcile({
    walk: async (onFiles) => {
      walks++;
      return await walkOf(tree)(onFiles);
    },
    tracks: (path) => tracked.has(path),
    publishedPaths: () => published,
    touch: (path) => touched.push(path),
    remove: (path) => removed.push(path) > 0,
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

describe('reconcile on demand (periodic and fallback scans)', () => {
  it('touches what changed since the previous scan began and what no event brought in, and removes what is gone', async () => {
    const tree = new Map([
      ['old.json', 50_000], // changed long before the first scan's window
      ['new.json', 150_000],
    ]);
    const published = ['old.json', 'gone.json'];
    start(tree, new Set(['old.json', 'new.json']), published);
    const reasons: string[] = [];
    reconcile.close();
    reconcile = createBurstReconcile({
      walk: walkOf(tree),
      tracks: () => true,
      publishedPaths: () => published,
      touch: (path) => touched.push(path),
      remove: (path) => removed.push(path) > 0,
      onReconciled: (stats) => reasons.push(stats.reason),
      onError: (err) => {
        throw err;
      },
    });
    vi.setSystemTime(200_000);
    await reconcile.scan('periodic');
    // The first scan's window starts when the reconcile was created (100,000): new.json changed after it.
    expect(touched).toEqual(['new.json']);
    expect(removed).toEqual(['gone.json']);
    touched.length = 0;
    tree.set('later.json', 250_000); // changed after the first scan began, its event lost
    vi.setSystemTime(300_000);
    await reconcile.scan('fallback');
    // The second window starts where the first scan began (200,000): new.json is not read again.
    expect(touched).toEqual(['later.json']);
    expect(reasons).toEqual(['periodic', 'fallback']);
  });

  it('counts a gone path that remove found back as touched, not removed', async () => {
    const tree = new Map([['kept.json', 1_000]]);
    start(tree, new Set(['kept.json']), []);
    reconcile.close();
    const stats: { touched: number; removed: number }[] = [];
    reconcile = createBurstReconcile({
      walk: walkOf(tree),
      tracks: () => true,
      publishedPaths: () => ['kept.json', 'back.json', 'gone.json'],
      touch: (path) => touched.push(path),
      // walk-deletions.ts: back.json is a file again when its deletion comes, so it is touched instead.
      remove: (path) => path !== 'back.json',
      onReconciled: (reconciled) => stats.push(reconciled),
      onError: (err) => {
        throw err;
      },
    });
    await reconcile.scan('periodic');
    expect(stats).toMatchObject([{ touched: 1, removed: 1 }]);
  });

  it('awaits roomToTouch before each touch, so a changed tree is not queued all at once', async () => {
    const tree = new Map(Array.from({ length: 10 }, (_, i) => [`p${i}.json`, 150_000] as [string, number]));
    let gate: () => void = () => undefined;
    let waits = 0;
    reconcile.close();
    touched = [];
    reconcile = createBurstReconcile({
      walk: walkOf(tree),
      tracks: () => false,
      publishedPaths: () => [],
      touch: (path) => touched.push(path),
      roomToTouch: () => {
        waits++;
        // Room for 3 touches, then the pipeline is "full" until the gate opens.
        return touched.length < 3 ? Promise.resolve() : new Promise<void>((resolve) => (gate = resolve));
      },
      remove: () => true,
      onReconciled: () => undefined,
      onError: (err) => {
        throw err;
      },
    });
    const scanning = reconcile.scan('periodic');
    await vi.advanceTimersByTimeAsync(0);
    expect(touched).toHaveLength(3);
    for (let i = 0; i < 20 && touched.length < 10; i++) {
      gate();
      await vi.advanceTimersByTimeAsync(0);
    }
    await scanning;
    expect(touched).toHaveLength(10);
    expect(waits).toBe(10);
  });
});
