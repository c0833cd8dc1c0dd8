/**
 * Walks of the source tree: every non-ignored file as a repository-style
 * relative path, optionally telling the caller about each directory before its
 * entries are read (so a watch added there misses nothing created meanwhile).
 *
 * Directories are read WALK_CONCURRENCY at a time: one at a time, each cost two
 * threadpool round trips in turn, and a 12,500-directory tree took 3.6 s to walk
 * with the loop mostly idle.
 */
import { statSync, type Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import PQueue from 'p-queue';
import { hasErrno } from '@metasync/shared';
import { createLoopSlices } from '@metasync/shared/daemon';
import { isIgnoredName } from './paths.js';

export interface WalkOptions {
  rootReal: string;
  /** Walk only below this directory ('' = the whole tree). */
  startRel?: string;
  /** Called for each directory (inode and birth time from lstat: together they tell a remade directory) before it is read. */
  onDirectory?(rel: string, ino: number, bornMs: number): void;
  /** True once the walk should end early: no further directory is read. */
  stopped?(): boolean;
}

/** Directories read at once: enough to keep the threadpool's four threads fed, few enough to bound open handles. */
export const WALK_CONCURRENCY = 16;

/** Every non-ignored file (and symlink) under the start directory, as paths relative to the root. */
export async function walkTree(options: WalkOptions): Promise<Set<string>> {
  const files = new Set<string>();
  await walkTreeFiles({
    ...options,
    onFiles(paths) {
      for (const path of paths) files.add(path);
    },
  });
  return files;
}

/**
 * The walk, handing each directory's files to `onFiles` as it reads them (no set of every path is built); the
 * directory's task waits for what onFiles returns, so a slow consumer holds the walk back. Resolves with how
 * many files it found.
 */
export async function walkTreeFiles(options: WalkOptions & { onFiles(paths: string[]): Promise<void> | void }): Promise<number> {
  const queue = new PQueue({ concurrency: WALK_CONCURRENCY });
  let failure: { err: unknown } | undefined;
  let found = 0;
  // Directories found but not yet queued, oldest first. A queued task costs about a kilobyte (its closures and
  // promises): queueing every subdirectory as it was found held 124,731 of them (~125 MB) once `p2/` was read
  // at a million paths. A name waiting here costs its string.
  const waiting: string[] = [options.startRel ?? ''];
  let head = 0;
  const pump = (): void => {
    while (failure === undefined && head < waiting.length && queue.size < WALK_CONCURRENCY && options.stopped?.() !== true) {
      const rel = waiting[head++]!;
      if (head >= 4_096 && head * 2 >= waiting.length) {
        waiting.splice(0, head);
        head = 0;
      }
      queue
        .add(async () => {
          if (failure !== undefined || options.stopped?.() === true) return;
          const { files, directories } = await readDirectory(options, rel);
          found += files.length;
          if (files.length > 0) await options.onFiles(files);
          for (const childRel of directories) waiting.push(childRel);
        })
        .catch((err: unknown) => {
          failure ??= { err };
          queue.clear();
        })
        // Refills the queue before this task counts as done, so the queue is never idle while names wait.
        .finally(pump);
    }
  };
  pump();
  // onIdle resolves once a task ends with none queued, and the pump its finally runs may queue more before this
  // wakes: look again until nothing runs, is queued or waits.
  for (;;) {
    await queue.onIdle();
    // Running tasks first: a failure ends the walk only once none of them can still call back.
    if (queue.pending > 0 || queue.size > 0) continue;
    if (failure !== undefined) break;
    if (head >= waiting.length || options.stopped?.() === true) break;
    pump();
  }
  if (failure !== undefined) throw failure.err;
  return found;
}

/** The directory's files and subdirectories (none when it is gone or no longer a directory). */
async function readDirectory(options: WalkOptions, rel: string): Promise<{ files: string[]; directories: string[] }> {
  const dir = rel === '' ? options.rootReal : join(options.rootReal, rel);
  const files: string[] = [];
  const directories: string[] = [];
  let entries;
  try {
    if (options.onDirectory !== undefined) {
      const info = await lstat(dir);
      if (!info.isDirectory()) return { files, directories }; // replaced by a file meanwhile; its event handles it
      options.onDirectory(rel, info.ino, info.birthtimeMs);
    }
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ENOTDIR')) return { files, directories }; // removed while walking; its removal event handles it
    throw err;
  }
  for (const entry of entries) {
    if (isIgnoredName(entry.name)) continue;
    const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
    if (entry.isDirectory()) directories.push(childRel);
    else if (entry.isFile() || entry.isSymbolicLink()) files.push(childRel);
  }
  return { files, directories };
}

/**
 * The walk, with each file's last change time: the later of mtime and ctime,
 * because a writer can set mtime into the past (`rsync -t`, `touch -d`) but
 * not ctime, which a write, a rename into place or a chmod all move forward.
 * Each directory's files go to `onFiles` as they are read (no map of every
 * path is built); a file removed meanwhile is left out. The stats are
 * synchronous, in slices (loop-slices.ts).
 */
export async function walkTreeChanges(
  rootReal: string,
  onFiles: (files: ReadonlyArray<readonly [path: string, changedMs: number]>) => Promise<void> | void,
): Promise<number> {
  const slices = createLoopSlices();
  return await walkTreeFiles({
    rootReal,
    async onFiles(paths) {
      const changed: Array<readonly [string, number]> = [];
      for (const path of paths) {
        const info = statIfPresent(join(rootReal, path));
        if (info !== undefined) changed.push([path, Math.max(info.mtimeMs, info.ctimeMs)]);
        await slices.turn();
      }
      await onFiles(changed);
    },
  });
}

function statIfPresent(absolute: string): Stats | undefined {
  try {
    return statSync(absolute, { throwIfNoEntry: false });
  } catch (err) {
    if (hasErrno(err, 'ENOTDIR')) return undefined; // a directory on the way became a file meanwhile
    throw err;
  }
}
