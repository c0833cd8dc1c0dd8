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
import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hasErrno, isSha256Hex } from '@metasync/shared';

const lstat = promisify(fsCallback.lstat);

export const STAT_CACHE_FILE = 'source-stat-cache';
/** Generous for coarse (jiffy) kernel timestamps and for filesystems with 1 s granularity. */
export const RACY_WINDOW_NS = 2_000_000_000n;
/** Written for a path whose earlier line no longer holds (a racy re-read): a later line wins on load, and this one drops the path. */
const FORGET_LINE = '0 0 0 0 -';

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
    const fields = line.slice(0, at);
    if (fields === FORGET_LINE) cache.delete(line.slice(at + 1));
    else cache.set(line.slice(at + 1), fields);
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

/** Lines are gathered into chunks this large before they reach the stream (a million small writes cost more than the data). */
const CHUNK_CHARS = 64 * 1024;

export interface StatCacheWriter {
  /** The line for `path` now; undefined forgets any line written for it earlier in this cache. */
  record(path: string, line: string | undefined): void;
  /** Flushes and puts the new cache in place of the old one (rejects when it could not be written). */
  finish(): Promise<void>;
}

/**
 * The next stat cache, appended to a temp file as files are read and renamed over the old one at the
 * end, so a start-up over a million files holds no line per file in memory (a Map of them was ~200 MB).
 * A path may get several lines; the last one wins on load (loadStatCache), which only ever costs a read.
 */
export function createStatCacheWriter(dataDir: string): StatCacheWriter {
  const finalPath = join(dataDir, STAT_CACHE_FILE);
  const tempPath = `${finalPath}.writing`;
  const stream = fsCallback.createWriteStream(tempPath, { mode: 0o600 });
  let failure: Error | undefined;
  stream.on('error', (err) => (failure ??= err));
  let chunk = '';
  const flush = (): void => {
    if (chunk === '' || failure !== undefined) return;
    stream.write(chunk);
    chunk = '';
  };
  return {
    record(path, line) {
      chunk += `${line ?? FORGET_LINE} ${path}\n`;
      if (chunk.length >= CHUNK_CHARS) flush();
    },
    async finish() {
      flush();
      await new Promise<void>((resolve) => stream.end(resolve));
      if (failure !== undefined) throw failure;
      await rename(tempPath, finalPath);
    },
  };
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
