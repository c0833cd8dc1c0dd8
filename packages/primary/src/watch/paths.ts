/**
 * What the source watcher may read: the ignore rules for temp and editor files,
 * the mapping from a file under --source to a repository path, and a read that
 * refuses symlinks leading out of the tree (checked before any byte is read).
 */
import { closeSync, constants, fstatSync, openSync, readlinkSync, readSync, realpathSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { relative, sep } from 'node:path';
import { hasErrno, isRepoPath } from '@metasync/shared';

/** Temp and editor files never published: `*.tmp`, `.#*`, `*~`, `*.swp`, and every dotfile or dot directory. */
export function isIgnoredName(name: string): boolean {
  return name.startsWith('.') || name.endsWith('.tmp') || name.endsWith('~') || name.endsWith('.swp');
}

/** True when any segment of a path relative to the source root is ignored. */
export function isIgnoredRelative(relPath: string): boolean {
  return relPath.split('/').some((segment) => segment !== '' && isIgnoredName(segment));
}

/** `/src/p2/acme/foo.json` under root `/src` -> `p2/acme/foo.json`; undefined for the root itself or outside. */
export function relativeSourcePath(root: string, absolute: string): string | undefined {
  const rel = relative(root, absolute);
  if (rel === '' || rel.startsWith('..') || rel.startsWith(sep)) return undefined;
  return sep === '/' ? rel : rel.split(sep).join('/');
}

export interface SourceFile {
  bytes: Buffer;
  size: number;
  mtimeMs: number;
  /** Inode: a rename-over with the same size and mtime (rsync -t) still differs here. */
  ino: number;
  /** Nanosecond times of the opened file, for the start-up stat cache (stat-cache.ts). */
  mtimeNs?: bigint;
  ctimeNs?: bigint;
}

export type SourceRead =
  | { kind: 'file'; file: SourceFile }
  | { kind: 'missing' }
  /** Not a regular file we may publish (a directory, a fifo): nothing to do. */
  | { kind: 'skipped' }
  | { kind: 'refused'; reason: string };

export interface ReadSourceOptions {
  /** realpath of --source. */
  rootReal: string;
  maxFileBytes: number;
}

function isInside(rootReal: string, target: string): boolean {
  return target.startsWith(rootReal.endsWith(sep) ? rootReal : rootReal + sep);
}

/**
 * Reads `relPath` under the root without a check-then-use race: the file is
 * opened first (following symlinks), then the path the kernel actually opened
 * (`/proc/self/fd/N`, realpath where /proc is missing) must lie inside the
 * root before a single byte is read. A symlink leading out, directly or through
 * a parent directory, is refused; nothing outside is ever read.
 *
 * Synchronous: it runs in a prepare thread (prepare-pool.ts), where five
 * blocking syscalls cost a few microseconds, against about 30 us each of the
 * main thread's time as threadpool requests.
 */
export function readSourceFile(options: ReadSourceOptions, relPath: string): SourceRead {
  if (!isRepoPath(relPath)) return { kind: 'refused', reason: 'not a valid repository path' };
  const absolute = `${options.rootReal}${sep}${relPath.split('/').join(sep)}`;
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO dropped into the tree must not block the open.
    fd = openSync(absolute, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ENOTDIR')) return { kind: 'missing' };
    if (hasErrno(err, 'ELOOP')) return { kind: 'refused', reason: 'symlink loop' };
    throw err;
  }
  try {
    const opened = openedPath(fd, absolute);
    if (!isInside(options.rootReal, opened)) return { kind: 'refused', reason: `resolves outside the source tree (to ${opened})` };
    const info = fstatSync(fd, { bigint: true });
    if (!info.isFile()) return { kind: 'skipped' };
    if (info.size > options.maxFileBytes) return { kind: 'refused', reason: `larger than ${options.maxFileBytes} bytes` };
    const bytes = readWhole(fd, Number(info.size), options.maxFileBytes);
    if (bytes === undefined) return { kind: 'refused', reason: `larger than ${options.maxFileBytes} bytes` };
    const file = { bytes, size: bytes.length, mtimeMs: Number(info.mtimeMs), ino: Number(info.ino) };
    return { kind: 'file', file: { ...file, mtimeNs: info.mtimeNs, ctimeNs: info.ctimeNs } };
  } finally {
    closeSync(fd);
  }
}

/**
 * One positional read of the size fstat gave, plus one byte to see growth: a file that grew since the
 * fstat is read on to its end (a writer still appending; the completeness rule judges what was read),
 * unless it grows past `maxBytes` (undefined).
 */
function readWhole(fd: number, size: number, maxBytes: number): Buffer | undefined {
  let buffer = Buffer.allocUnsafeSlow(size + 1);
  let length = 0;
  for (;;) {
    const bytesRead = readSync(fd, buffer, length, buffer.length - length, length);
    length += bytesRead;
    if (length > maxBytes) return undefined;
    if (bytesRead === 0 || length < buffer.length) return buffer.subarray(0, length);
    const larger = Buffer.allocUnsafeSlow(Math.min(buffer.length * 2, maxBytes + 1));
    buffer.copy(larger);
    buffer = larger;
  }
}

function openedPath(fd: number, absolute: string): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch (err) {
    if (!hasErrno(err, 'ENOENT')) throw err;
    return realpathSync(absolute); // no /proc: fall back to resolving the name
  }
}

/** What a recheck compares: a file rewritten since it was read differs in one of these (a rename-over in its inode). */
export interface FileIdentity {
  size: number;
  /** Whole milliseconds, as a BigInt stat gives them (a plain stat's fraction is not comparable). */
  mtimeMs: number;
  ino: number;
  mtimeNs?: bigint;
}

/**
 * Whether two looks at a file saw the same file: nanoseconds when both have them. Both sides must come
 * from BigInt stats: a plain stat's fractional mtimeMs never equals a BigInt stat's whole one, and a
 * recheck comparing them re-read every event-written file every 20 ms, for good.
 */
export function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  if (a.size !== b.size || a.ino !== b.ino) return false;
  return a.mtimeNs !== undefined && b.mtimeNs !== undefined ? a.mtimeNs === b.mtimeNs : a.mtimeMs === b.mtimeMs;
}

/** Size, mtime and inode, or undefined when the file is gone. */
export async function statSourceFile(options: ReadSourceOptions, relPath: string): Promise<FileIdentity | undefined> {
  try {
    const info = await stat(`${options.rootReal}${sep}${relPath.split('/').join(sep)}`, { bigint: true });
    return { size: Number(info.size), mtimeMs: Number(info.mtimeMs), ino: Number(info.ino), mtimeNs: info.mtimeNs };
  } catch (err) {
    if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ENOTDIR')) return undefined;
    throw err;
  }
}
