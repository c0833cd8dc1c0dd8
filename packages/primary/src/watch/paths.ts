/**
 * What the source watcher may read: the ignore rules for temp and editor files,
 * the mapping from a file under --source to a repository path, and a read that
 * refuses symlinks leading out of the tree (checked before any byte is read).
 */
import { constants } from 'node:fs';
import { open, readlink, realpath, stat, type FileHandle } from 'node:fs/promises';
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
 */
export async function readSourceFile(options: ReadSourceOptions, relPath: string): Promise<SourceRead> {
  if (!isRepoPath(relPath)) return { kind: 'refused', reason: 'not a valid repository path' };
  const absolute = `${options.rootReal}${sep}${relPath.split('/').join(sep)}`;
  let handle: FileHandle;
  try {
    // O_NONBLOCK: a FIFO dropped into the tree must not block the open.
    handle = await open(absolute, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ENOTDIR')) return { kind: 'missing' };
    if (hasErrno(err, 'ELOOP')) return { kind: 'refused', reason: 'symlink loop' };
    throw err;
  }
  try {
    const opened = await openedPath(handle, absolute);
    if (!isInside(options.rootReal, opened)) return { kind: 'refused', reason: `resolves outside the source tree (to ${opened})` };
    const info = await handle.stat({ bigint: true });
    if (!info.isFile()) return { kind: 'skipped' };
    if (info.size > options.maxFileBytes) return { kind: 'refused', reason: `larger than ${options.maxFileBytes} bytes` };
    const bytes = await readWhole(handle, Number(info.size));
    const file = { bytes, size: bytes.length, mtimeMs: Number(info.mtimeMs), ino: Number(info.ino) };
    return { kind: 'file', file: { ...file, mtimeNs: info.mtimeNs, ctimeNs: info.ctimeNs } };
  } finally {
    await handle.close();
  }
}

/**
 * One positional read of the size fstat gave, plus one byte to see growth: a start-up ingest reads every
 * file, and FileHandle.readFile costs two more requests each (another fstat, and a read to find EOF).
 * A file that grew since the fstat is read to its end the usual way.
 */
async function readWhole(handle: FileHandle, size: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafeSlow(size + 1);
  const { bytesRead } = await handle.read(buffer, 0, size + 1, 0);
  if (bytesRead <= size) return buffer.subarray(0, bytesRead);
  return await handle.readFile();
}

async function openedPath(handle: FileHandle, absolute: string): Promise<string> {
  try {
    return await readlink(`/proc/self/fd/${handle.fd}`);
  } catch (err) {
    if (!hasErrno(err, 'ENOENT')) throw err;
    return realpath(absolute); // no /proc: fall back to resolving the name
  }
}

/** Size and mtime, or undefined when the file is gone. */
export async function statSourceFile(
  options: ReadSourceOptions,
  relPath: string,
): Promise<{ size: number; mtimeMs: number; ino: number } | undefined> {
  try {
    const info = await stat(`${options.rootReal}${sep}${relPath.split('/').join(sep)}`);
    return { size: info.size, mtimeMs: info.mtimeMs, ino: info.ino };
  } catch (err) {
    if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ENOTDIR')) return undefined;
    throw err;
  }
}
