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
 * files are read again), read once at start-up into a compact table (no string
 * per path), and not held after the start-up reconcile.
 */
import * as fsCallback from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { hasErrno, isSha256Hex } from '@metasync/shared';
import { grow } from '@metasync/shared/tables';
import { createPathKeys } from './path-keys.js';

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

/**
 * The last cache, held compactly (path-keys.ts): no string per path. A line is kept only when its sha256 is
 * well formed; of the sha256 only its first 64 bits are kept, which is all vouches() compares.
 */
export interface StatCache {
  /** Paths with a line. */
  readonly size: number;
  has(path: string): boolean;
  /**
   * True when `path` has a line whose size, mtime, ctime and inode all equal `identity`, and whose sha256 is
   * `published` (what the manifest publishes for the path now).
   */
  vouches(path: string, identity: FileIdentity, published: string | undefined): boolean;
}

export async function loadStatCache(dataDir: string): Promise<StatCache> {
  const table = createStatCacheTable();
  let lines;
  try {
    const file = await open(join(dataDir, STAT_CACHE_FILE));
    lines = createInterface({ input: file.createReadStream(), crlfDelay: Infinity });
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return table;
    throw err;
  }
  for await (const line of lines) {
    // Five space-separated fields, then the path (repository paths hold no newline).
    let at = -1;
    for (let field = 0; field < 5 && (at = line.indexOf(' ', at + 1)) !== -1; field++);
    if (at <= 0 || at === line.length - 1) continue;
    const path = line.slice(at + 1);
    const fields = line.slice(0, at);
    const [size, mtimeNs, ctimeNs, ino, sha256] = fields.split(' ');
    const wellFormed = sha256 !== undefined && isSha256Hex(sha256) && DIGITS.test(`${size}${mtimeNs}${ctimeNs}${ino}`);
    // A forget line (sha256 '-') or a damaged one drops the path's earlier line: a later line wins.
    if (!wellFormed) table.forget(path);
    else table.set(path, { size: Number(size), mtimeNs: BigInt(mtimeNs!), ctimeNs: BigInt(ctimeNs!), ino: Number(ino) }, sha256);
  }
  return table;
}

const DIGITS = /^\d+$/;

/** The first 64 bits of a sha256 in hex, as two numbers. */
const shaHi = (sha256: string): number => Number.parseInt(sha256.slice(0, 8), 16);
const shaLo = (sha256: string): number => Number.parseInt(sha256.slice(8, 16), 16);

interface StatCacheTable extends StatCache {
  set(path: string, identity: FileIdentity, sha256: string): void;
  forget(path: string): void;
}

/** About 56 bytes a line (identity 32, sha256 prefix 8, path-keys.ts 16 with its slots; 75 measured with growth slack) where a Map of the lines took 261. */
function createStatCacheTable(): StatCacheTable {
  const keys = createPathKeys(1 << 16);
  let sizes = new Float64Array(1 << 16);
  let inos = new Float64Array(sizes.length);
  let mtimes = new BigInt64Array(sizes.length);
  let ctimes = new BigInt64Array(sizes.length);
  let shaHis = new Uint32Array(sizes.length);
  let shaLos = new Uint32Array(sizes.length);
  let live = 0;
  /** A forgotten line keeps its key, with size -1. */
  const lineOf = (path: string): number => {
    const at = keys.find(path);
    return at !== -1 && sizes[at]! >= 0 ? at : -1;
  };
  function growLines(): void {
    const length = sizes.length * 2;
    [sizes, inos] = [grow(sizes, length), grow(inos, length)];
    [mtimes, ctimes] = [grow(mtimes, length), grow(ctimes, length)];
    [shaHis, shaLos] = [grow(shaHis, length), grow(shaLos, length)];
  }
  return {
    get size() {
      return live;
    },
    has: (path) => lineOf(path) !== -1,
    vouches(path, identity, published) {
      const at = lineOf(path);
      return (
        at !== -1 &&
        published !== undefined &&
        sizes[at] === identity.size &&
        mtimes[at] === identity.mtimeNs &&
        ctimes[at] === identity.ctimeNs &&
        inos[at] === identity.ino &&
        shaHis[at] === shaHi(published) &&
        shaLos[at] === shaLo(published)
      );
    },
    set(path, identity, sha256) {
      if (lineOf(path) === -1) live++;
      const at = keys.add(path);
      if (at >= sizes.length) growLines();
      sizes[at] = identity.size;
      inos[at] = identity.ino;
      mtimes[at] = identity.mtimeNs;
      ctimes[at] = identity.ctimeNs;
      shaHis[at] = shaHi(sha256);
      shaLos[at] = shaLo(sha256);
    },
    forget(path) {
      const at = lineOf(path);
      if (at === -1) return;
      sizes[at] = -1;
      live--;
    },
  };
}

/** One line for a file read (or trusted) now; undefined when the file is too young to trust later (racy). */
export function cacheLine(identity: FileIdentity, sha256: string, nowNs: bigint): string | undefined {
  const changedNs = identity.ctimeNs > identity.mtimeNs ? identity.ctimeNs : identity.mtimeNs;
  if (changedNs > nowNs - RACY_WINDOW_NS) return undefined;
  return vouchedLine(identity, sha256);
}

/** The line again for a file the cache vouched for (it was not racy when first written). */
export function vouchedLine(identity: FileIdentity, sha256: string): string {
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
 * The file's identity now, or undefined when it is gone or not a regular file. A symlink is never trusted
 * unread (lstat): where it leads is checked by the read (paths.ts), and its target may change without the
 * link changing. Synchronous, for the start-up reconcile's million checks: a cached lstat costs about a
 * microsecond in the kernel, a threadpool round trip 10-30 us of this thread's time on a busy pool. The
 * caller bounds how long it holds the event loop (startup-reconcile.ts).
 */
export function statIdentitySync(absolute: string): FileIdentity | undefined {
  const info = fsCallback.lstatSync(absolute, { bigint: true, throwIfNoEntry: false });
  if (info === undefined || !info.isFile()) return undefined;
  return { size: Number(info.size), mtimeNs: info.mtimeNs, ctimeNs: info.ctimeNs, ino: Number(info.ino) };
}
