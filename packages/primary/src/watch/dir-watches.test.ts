import { EventEmitter } from 'node:events';
import type { FSWatcher } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createDirWatches, type WatchDir } from './dir-watches.js';

/** A fake fs.watch: records what is watched, fails like the kernel once `failAfter` watches exist. */
function fakeWatch(failAfter: number, code = 'ENOSPC') {
  const open = new Set<string>();
  let calls = 0;
  const watchDir: WatchDir = (absolute) => {
    calls++;
    if (open.size >= failAfter) {
      throw Object.assign(new Error(`${code}: System limit for number of file watchers reached, watch '${absolute}'`), { code });
    }
    open.add(absolute);
    const watcher = new EventEmitter() as unknown as FSWatcher;
    (watcher as unknown as { close: () => void }).close = () => open.delete(absolute);
    return watcher;
  };
  return { watchDir, open, calls: () => calls };
}

function setup(options: { failAfter?: number; code?: string; maxWatches?: number }) {
  const fake = fakeWatch(options.failAfter ?? Infinity, options.code);
  const limits: Array<{ reason: string; directory: string }> = [];
  const watches = createDirWatches({
    rootReal: '/src',
    maxWatches: options.maxWatches ?? 0,
    onEvent: () => undefined,
    onLimit: ({ reason, directory }) => limits.push({ reason, directory }),
    onCountChange: () => undefined,
    watchDir: fake.watchDir,
  });
  return { fake, limits, watches };
}

describe('directory watches', () => {
  it('reports ENOSPC once as a limit, keeps the watches it has and tries no more', () => {
    const { fake, limits, watches } = setup({ failAfter: 2 });
    expect(watches.add('', 1)).toBe(true);
    expect(watches.add('p2', 2)).toBe(true);
    expect(watches.add('p2/acme', 3)).toBe(false);
    expect(watches.add('p2/other', 4)).toBe(false);
    expect(limits).toEqual([{ reason: 'ENOSPC', directory: 'p2/acme' }]);
    expect(fake.calls()).toBe(3);
    expect(watches.limited()).toBe(true);
    expect(watches.size()).toBe(2);
  });

  it('treats EMFILE like ENOSPC', () => {
    const { limits, watches } = setup({ failAfter: 0, code: 'EMFILE' });
    expect(watches.add('', 1)).toBe(false);
    expect(limits).toEqual([{ reason: 'EMFILE', directory: '' }]);
  });

  it('stops at --source-max-watches without asking the kernel', () => {
    const { fake, limits, watches } = setup({ maxWatches: 2 });
    watches.add('', 1);
    watches.add('a', 2);
    expect(watches.add('b', 3)).toBe(false);
    expect(fake.calls()).toBe(2);
    expect(limits).toEqual([{ reason: 'source-max-watches', directory: 'b' }]);
  });

  it('does not count a directory gone before its watch as a limit', () => {
    const fake = fakeWatch(Infinity);
    const limits: unknown[] = [];
    const watches = createDirWatches({
      rootReal: '/src',
      maxWatches: 0,
      onEvent: () => undefined,
      onLimit: (limit) => limits.push(limit),
      onCountChange: () => undefined,
      watchDir: (absolute, listener) => {
        if (absolute.endsWith('gone')) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
        return fake.watchDir(absolute, listener);
      },
    });
    expect(watches.add('gone', 1)).toBe(false);
    expect(limits).toEqual([]);
    expect(watches.limited()).toBe(false);
  });

  it('is idempotent for one inode, re-watches a name another directory took, and removes a subtree but not its siblings', () => {
    const { fake, watches } = setup({});
    watches.add('', 1);
    watches.add('p2/a', 2);
    watches.add('p2/a/x', 3);
    watches.add('p2/ab', 4);
    expect(watches.add('p2/a', 2)).toBe(true);
    expect(fake.calls()).toBe(4);
    expect(watches.add('p2/a', 9)).toBe(true);
    expect(watches.inode('p2/a')).toBe(9);
    expect(watches.removeSubtree('p2/a')).toBe(2);
    expect([...fake.open].sort()).toEqual(['/src', '/src/p2/ab']);
    watches.close();
    expect(fake.open.size).toBe(0);
  });
});
