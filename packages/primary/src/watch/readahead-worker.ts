/**
 * The readahead thread (readahead.ts): reads files the main thread is about to
 * read into a scratch buffer and drops the bytes, so the main thread's own
 * read (paths.ts, with its checks) finds them in the page cache instead of
 * waiting for the disk. Nothing read here is kept or used. It reads only what
 * the main thread would: a regular file (stat'ed before it is opened, so no
 * device or FIFO is opened), no larger than the limit, that lies inside the
 * tree once opened (/proc/self/fd/N). Every error is skipped: only a hint.
 */
import { closeSync, constants, fstatSync, openSync, readlinkSync, readSync, statSync } from 'node:fs';
import { sep } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';

const { rootReal, maxFileBytes } = workerData as { rootReal: string; maxFileBytes: number };
const inside = rootReal.endsWith(sep) ? rootReal : rootReal + sep;
const scratch = Buffer.allocUnsafeSlow(256 * 1024);

/** True when the file was read. */
function warm(absolute: string): boolean {
  let fd: number | undefined;
  try {
    const before = statSync(absolute, { throwIfNoEntry: false });
    if (before === undefined || !before.isFile() || before.size > maxFileBytes) return false;
    fd = openSync(absolute, constants.O_RDONLY | constants.O_NONBLOCK);
    if (!readlinkSync(`/proc/self/fd/${fd}`).startsWith(inside)) return false;
    const info = fstatSync(fd);
    if (!info.isFile() || info.size > maxFileBytes) return false;
    for (let position = 0; position < info.size;) {
      const read = readSync(fd, scratch, 0, scratch.length, position);
      if (read === 0) break;
      position += read;
    }
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

parentPort?.on('message', (paths: string[]) => {
  let warmed = 0;
  for (const path of paths) if (warm(path)) warmed++;
  parentPort?.postMessage({ done: paths.length, warmed });
});
