import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { walkTreeFiles } from './tree-walk.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'metasync-tree-walk-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('tree walk', () => {
  it('finds every file of a wide and deep tree, each directory told once and before its files', async () => {
    // p2/ holds many vendor directories at once (124,731 at a million paths), and one branch is deep.
    const expected: string[] = [];
    for (let v = 0; v < 1_500; v++) {
      await mkdir(join(root, 'p2', `vendor-${v}`), { recursive: true });
      await writeFile(join(root, 'p2', `vendor-${v}`, 'package.json'), '{}');
      expected.push(`p2/vendor-${v}/package.json`);
    }
    let deep = 'deep';
    for (let d = 0; d < 40; d++, deep += `/d${d}`) {
      await mkdir(join(root, deep), { recursive: true });
      await writeFile(join(root, deep, 'f.json'), '{}');
      expected.push(`${deep}/f.json`);
    }
    const told = new Map<string, number>();
    const files: string[] = [];
    const found = await walkTreeFiles({
      rootReal: root,
      onDirectory: (rel) => told.set(rel, (told.get(rel) ?? 0) + 1),
      async onFiles(paths) {
        for (const path of paths) {
          expect(told.get(path.slice(0, path.lastIndexOf('/')))).toBe(1);
          files.push(path);
        }
        // A slow consumer: the walk waits for it.
        await new Promise((resolve) => setImmediate(resolve));
      },
    });
    expect(found).toBe(expected.length);
    expect(files.sort()).toEqual(expected.sort());
    expect([...told.values()].every((count) => count === 1)).toBe(true);
    expect(told.size).toBe(1 + 1 + 1_500 + 40);
  });

  it('ends early when stopped, reading no further directory', async () => {
    for (let v = 0; v < 200; v++) await mkdir(join(root, `v${v}`, 'inner'), { recursive: true });
    let read = 0;
    await walkTreeFiles({ rootReal: root, onDirectory: () => read++, stopped: () => read >= 50, onFiles: () => undefined });
    // Tasks already running finish; nothing new starts once stopped.
    expect(read).toBeGreaterThanOrEqual(50);
    expect(read).toBeLessThan(50 + 2 * 16);
  });

  it('rejects only once no task can still call back, when a failure and another task end in the same burst', async () => {
    for (const dir of ['a', 'b']) {
      await mkdir(join(root, dir));
      await writeFile(join(root, dir, 'f'), '');
    }
    for (let i = 0; i < 5; i++) {
      await mkdir(join(root, 'a', `c${i}`));
      await writeFile(join(root, 'a', `c${i}`, 'f'), '');
    }
    const ticks = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) await Promise.resolve();
    };
    // a/f ends k microtask ticks after a shared gate opens, b/f throws j ticks after it: every interleaving.
    for (let k = 0; k <= 8; k++) {
      for (let j = 0; j <= 8; j++) {
        let open!: () => void;
        const gate = new Promise<void>((resolve) => (open = resolve));
        let atGate = 0;
        let settled = false;
        const late: string[] = [];
        const walk = walkTreeFiles({
          rootReal: root,
          onDirectory: (rel) => void (settled && late.push(`dir ${rel}`)),
          async onFiles(paths) {
            if (settled) late.push(`files ${paths[0]}`);
            if (paths[0] !== 'a/f' && paths[0] !== 'b/f') return;
            if (++atGate === 2) setImmediate(open);
            await gate;
            await ticks(paths[0] === 'a/f' ? k : j);
            if (paths[0] === 'b/f') throw new Error('boom');
          },
        });
        await expect(walk, `k=${k} j=${j}`).rejects.toThrow('boom');
        settled = true;
        await new Promise((resolve) => setTimeout(resolve, 5));
        expect(late, `k=${k} j=${j}`).toEqual([]);
      }
    }
  });
});
