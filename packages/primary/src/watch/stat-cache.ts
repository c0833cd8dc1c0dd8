/**
 * What the start-up reconcile read last time, so a restart on an unchanged
 * tree does not read and hash every file again: `<data>/source-stat-cache`,
 * one line per file,
 *
 *   <size> <mtime ns> <ctime ns> <inode> <sha256> <path>\n
 *
 * A file is trusted unread only when its size, mtime, ctime and inode all
 * equal the line's AND the manifest still publishes the line's sha256 for the
 * path (so a line written for content whose commit never happened is
 * harmless). ctime cannot be set by a writer (`touch -d`, `rsync -t` set mtime
 * only), and a write, rename-over or chmod moves it forward.
 *
 * Racy entries (as in git's index): a file changed twice within one timestamp
 * tick keeps its mtime and ctime, so a line is only written for a file whose
 * ctime was already RACY_WINDOW_NS older than the read; a younger one is read
 * again at the next start.
 *
 * The file is a cache: written without fsync (a torn or lost file only means
 * files are read again), read once at start-up, and never held in memory after.
 */
import * as fsCallback from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hasErrno, isSha256Hex } from '@metasync/shared';
import { writeFileAtomic } from '@metasync/shared/fs';

const lstat = promisify(fsCallback.lstat);

export const STAT_CACHE_FILE = 'source-stat-cache';
/** Generous for coarse (jiffy) kernel timestamps and for filesystems with 1 s granularity. */
export const RACY_WINDOW_NS = 2_000_000_000n;

export interface FileIdentity {
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: number;
}

/** Lines of the last cache by path (the rest of the line, parsed on lookup). */
export type StatCache = Map<string, string>;

export async function loadStatCache(dataDir: string): Promise<StatCache> {
  const cache: StatCache = new Map();
  let text: string;
  try {
    text = await readFile(join(dataDir, STAT_CACHE_FILE), 'utf8');
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return cache;
    throw err;
  }
  for (const line of text.split('\n')) {
    // Five space-separated fields, then the path (repository paths hold no newline).
    let at = -1;
    for (let field = 0; field < 5 && (at = line.indexOf(' ', at + 1)) !== -1; field++);
    if (at <= 0 || at === line.length - 1) continue;
    cache.set(line.slice(at + 1), line.slice(0, at));
  }
  return cache;
}

/** The sha256 a cache line vouches for, or undefined when `identity` differs from the line's (or the line is damaged). */
export function cachedSha(line: string, identity: FileIdentity): string | undefined {
  const [size, mtimeNs, ctimeNs, ino, sha256] = line.split(' ');
  if (sha256 === undefined || !isSha256Hex(sha256)) return undefined;
  const same =
    size === String(identity.size) &&
    mtimeNs === String(identity.mtimeNs) &&
    ctimeNs === String(identity.ctimeNs) &&
    ino === String(identity.ino);
  return same ? sha256 : undefined;
}

/** One line for a file read (or trusted) now; undefined when the file is too young to trust later (racy). */
export function cacheLine(identity: FileIdentity, sha256: string, nowNs: bigint): string | undefined {
  const changedNs = identity.ctimeNs > identity.mtimeNs ? identity.ctimeNs : identity.mtimeNs;
  if (changedNs > nowNs - RACY_WINDOW_NS) return undefined;
  return `${identity.size} ${identity.mtimeNs} ${identity.ctimeNs} ${identity.ino} ${sha256}`;
}

export async function saveStatCache(dataDir: string, lines: ReadonlyMap<string, string>): Promise<void> {
  const parts: string[] = [];
  for (const [path, line] of lines) parts.push(`${line} ${path}\n`);
  await writeFileAtomic(join(dataDir, STAT_CACHE_FILE), parts.join(''), { durable: false });
}

/**
 * The file's identity now, or undefined when it is gone or not a regular file. A symlink is never
 * trusted unread (lstat): where it leads is checked by the read (paths.ts), and its target may change
 * without the link changing.
 */
export async function statIdentity(absolute: string): Promise<FileIdentity | undefined> {
  try {
    const info = await lstat(absolute, { bigint: true });
    if (!info.isFile()) return undefined;
    return { size: Number(info.size), mtimeNs: info.mtimeNs, ctimeNs: info.ctimeNs, ino: Number(info.ino) };
  } catch (err) {
    if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ENOTDIR')) return undefined;
    throw err;
  }
}
