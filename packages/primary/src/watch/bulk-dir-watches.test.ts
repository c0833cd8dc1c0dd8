import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createBulkDirWatches } from './bulk-dir-watches.js';
import type { DirWatches } from './dir-watches.js';
import { childrenNamed } from '../../../../test/helpers/proc-stats.js';
import { findInotifywait, watchesByNumber } from './inotifywait-process.js';

/**
 * The real inotifywait (inotify-tools, installed by scripts/setup.sh) holding a tree's watches; who holds
 * which watch is read from the kernel's own lists (/proc/<pid>/fdinfo).
 */
const command = findInotifywait();
if (command === undefined) throw new Error('inotifywait is not installed: run scripts/setup.sh');

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const VENDORS = 20;
const DIRECTORIES = ['', 'p2', 'p2/acme', 'p2/other', ...Array.from({ length: VENDORS }, (_, v) => `p2/v${v}`)];

async function tree(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'bulk-watch-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, 'p2', 'acme'), { recursive: true });
  await mkdir(join(root, 'p2', 'other'), { recursive: true });
  // Enough directories that the kernel numbers watches past 9 (its fdinfo lists them in hex).
  for (let v = 0; v < VENDORS; v++) await mkdir(join(root, 'p2', `v${v}`));
  return root;
}

interface Seen {
  events: Array<[string, string | undefined, string]>;
  limits: Array<{ reason: string; directory: string }>;
  unavailable: string[];
  overflows: number;
}

function watch(root: string, options: { command?: readonly string[] } = {}): { watches: DirWatches; seen: Seen } {
  const seen: Seen = { events: [], limits: [], unavailable: [], overflows: 0 };
  const watches = createBulkDirWatches({
    rootReal: root,
    maxWatches: 0,
    command: options.command ?? command!,
    onEvent: (dirRel, name, eventType) => seen.events.push([dirRel, name, eventType]),
    onLimit: ({ reason, directory }) => seen.limits.push({ reason, directory }),
    onCountChange: () => undefined,
    onOverflow: () => seen.overflows++,
    onBulkUnavailable: (message) => seen.unavailable.push(message),
  });
  cleanups.push(() => watches.close());
  return { watches, seen };
}

async function inodeOf(path: string): Promise<number> {
  return (await stat(path)).ino;
}

/** Inode and birth time, as the walks give them to add(). */
async function identity(path: string): Promise<[number, number]> {
  const info = await stat(path);
  return [info.ino, info.birthtimeMs];
}

/** The inodes `pid` holds inotify watches on. */
async function watchedInodes(pid: number): Promise<Set<number> | undefined> {
  const watches = await watchesByNumber(pid);
  return watches === undefined ? undefined : new Set(watches.values());
}

/** This process's inotifywait children watching `root` (other test files share the process). */
async function inotifywaitChildren(root: string): Promise<number[]> {
  const rootIno = await inodeOf(root);
  const pids: number[] = [];
  for (const pid of await childrenNamed(process.pid, 'inotifywait')) if ((await watchedInodes(pid))?.has(rootIno) === true) pids.push(pid);
  return pids;
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('directory watches held by an inotifywait child', () => {
  it('holds every directory present in the child, none in this process, and reports entries changed below them', async () => {
    const root = await tree();
    const { watches, seen } = watch(root);
    await watches.ready;
    for (const rel of DIRECTORIES) expect(watches.add(rel, ...(await identity(join(root, rel))))).toBe(true);
    expect(watches.size()).toBe(DIRECTORIES.length);
    const [child] = await inotifywaitChildren(root);
    expect(child).toBeDefined();
    const held = await watchedInodes(child!);
    const mine = (await watchedInodes(process.pid)) ?? new Set<number>();
    for (const rel of DIRECTORIES) {
      const ino = await inodeOf(join(root, rel));
      expect(held?.has(ino)).toBe(true);
      expect(mine.has(ino)).toBe(false);
    }

    await writeFile(join(root, 'p2/acme/new file.json'), '{}');
    await until('the create event', () => seen.events.some(([dir, name]) => dir === 'p2/acme' && name === 'new file.json'));
    expect(seen.events).toContainEqual(['p2/acme', 'new file.json', 'rename']);
    await until('the write event', () => seen.events.some((event) => event[2] === 'change'));
    expect(seen.events).toContainEqual(['p2/acme', 'new file.json', 'change']);
    await rm(join(root, 'p2/other'), { recursive: true });
    await until('the removal', () => seen.events.some(([dir, name]) => dir === 'p2' && name === 'other'));
    expect(seen.limits).toEqual([]);
    expect(seen.unavailable).toEqual([]);
  });

  it('watches here a directory renamed before the start-up walk met it, and every directory added after that walk', async () => {
    const root = await tree();
    const { watches, seen } = watch(root);
    await watches.ready;
    // Renamed after the child was given its list: the child would name its events by the old path.
    await rename(join(root, 'p2/acme'), join(root, 'p2/moved'));
    // Deleted and made again under its name: ext4 gives it the same inode number, the child no watch.
    await rm(join(root, 'p2/v1'), { recursive: true });
    await mkdir(join(root, 'p2/v1'));
    for (const rel of ['', 'p2', 'p2/moved', 'p2/other', 'p2/v1'])
      expect(watches.add(rel, ...(await identity(join(root, rel))))).toBe(true);
    const mine = async (rel: string): Promise<boolean> => (await watchedInodes(process.pid))?.has(await inodeOf(join(root, rel))) === true;
    expect(await mine('p2/moved')).toBe(true);
    expect(await mine('p2/v1')).toBe(true);
    expect(await mine('p2/other')).toBe(false);
    watches.startupWalked();

    // After the walk: made, and renamed (as tree-events.ts does: the old name's subtree goes, the new one is added).
    await mkdir(join(root, 'p2/fresh'));
    expect(watches.add('p2/fresh', ...(await identity(join(root, 'p2/fresh'))))).toBe(true);
    await rename(join(root, 'p2/other'), join(root, 'p2/elsewhere'));
    expect(watches.removeSubtree('p2/other')).toBe(1);
    expect(watches.add('p2/elsewhere', ...(await identity(join(root, 'p2/elsewhere'))))).toBe(true);
    expect(await mine('p2/fresh')).toBe(true);
    expect(await mine('p2/elsewhere')).toBe(true);
    await writeFile(join(root, 'p2/elsewhere/x.json'), '{}');
    await until('the event under the new name', () => seen.events.some(([dir, name]) => dir === 'p2/elsewhere' && name === 'x.json'));
    // A chmod of a directory is named by its parent's watch, never an event without a name (a walk of it all).
    await chmod(join(root, 'p2/v3'), 0o700);
    await until('the attribute event', () => seen.events.some(([dir, name]) => dir === 'p2' && name === 'v3'));
    expect(seen.events).toContainEqual(['p2', 'v3', 'rename']);
    expect(seen.events.filter(([, name]) => name === undefined || name === '')).toEqual([]);
  });

  it('watches everything in this process when the child fails to set up (the kernel refusing a watch)', async () => {
    const root = await tree();
    // Stands in for inotifywait meeting the kernel's limit: its two lines of stderr, then its exit status.
    const tries = join(root, 'tries');
    const refusing = [
      'sh',
      '-c',
      `echo x >> ${tries}; echo "Failed to watch /x/; upper limit on inotify watches reached!" >&2; ` +
        'echo "Please increase the amount of inotify watches allowed per user via /proc/sys/fs/inotify/max_user_watches." >&2; exit 1',
      'inotifywait',
    ];
    const { watches, seen } = watch(root, { command: refusing });
    await watches.ready;
    expect(seen.unavailable).toHaveLength(1);
    expect(await readFile(tries, 'utf8')).toBe('x\n'); // tried once: another try meets the same limit
    expect(seen.unavailable[0]).toMatch(/exited \(code 1\): Failed to watch .*upper limit on inotify watches reached!$/);
    expect(watches.kind()).toBe('fs-watch');
    const ino = await inodeOf(join(root, 'p2', 'acme'));
    expect(watches.add('p2/acme', ino)).toBe(true);
    expect((await watchedInodes(process.pid))?.has(ino)).toBe(true);
    expect(watches.limited()).toBe(false);
  });

  it('tries the set-up again when a listed directory vanished before its watch', async () => {
    const root = await tree();
    const tries = join(root, 'tries');
    // Stands in for inotifywait finding a listed directory gone, twice; the third time is the real one.
    const real = command![command!.length - 1]!;
    const flaky = [
      'sh',
      '-c',
      `echo x >> ${tries}; [ $(wc -l < ${tries}) -ge 3 ] && exec ${real} "$@"; echo "Couldn't watch /x/: No such file or directory" >&2; exit 1`,
      'inotifywait',
    ];
    const { watches, seen } = watch(root, { command: flaky });
    await watches.ready;
    expect((await readFile(tries, 'utf8')).split('\n').filter((line) => line !== '')).toHaveLength(3);
    expect(seen.unavailable).toEqual([]);
    expect(watches.kind()).toBe('inotifywait');
  });

  it('reports a child that ends after set-up as a limit: its directories are scanned from then on', async () => {
    const root = await tree();
    const { watches, seen } = watch(root);
    await watches.ready;
    watches.add('p2', ...(await identity(join(root, 'p2'))));
    const [child] = await inotifywaitChildren(root);
    process.kill(child!, 'SIGKILL');
    await until('the limit', () => seen.limits.length > 0);
    expect(seen.limits).toEqual([{ reason: 'watch process exited', directory: '' }]);
    expect(watches.limited()).toBe(true);
  });

  it('closes its child', async () => {
    const root = await tree();
    const { watches } = watch(root);
    await watches.ready;
    const [child] = await inotifywaitChildren(root);
    watches.close();
    await until('the child gone', async () => !(await inotifywaitChildren(root)).includes(child!));
  });
});
