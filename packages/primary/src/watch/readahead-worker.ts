/**
 * The readahead thread (readahead.ts): reads files the main thread is about to
 * read into a scratch buffer and drops the bytes, so the main thread's own
 * read (paths.ts, with its checks) finds them in the page cache instead of
 * waiting for the disk. Nothing read here is kept or used; a file that is not
 * regular, too large, or gone is skipped, and no error goes anywhere.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { maxFileBytes } = workerData as { maxFileBytes: number };
const scratch = Buffer.allocUnsafeSlow(256 * 1024);

function warm(absolute: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(absolute, constants.O_RDONLY | constants.O_NONBLOCK);
    const info = fstatSync(fd);
    if (!info.isFile() || info.size > maxFileBytes) return;
    for (let position = 0; position < info.size;) {
      const read = readSync(fd, scratch, 0, scratch.length, position);
      if (read === 0) break;
      position += read;
    }
  } catch {
    // Only a hint: the main thread's read reports what matters.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

parentPort?.on('message', (paths: string[]) => {
  for (const path of paths) warm(path);
});
