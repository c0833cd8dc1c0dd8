import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { open, rename, rm, utimes, type FileHandle } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';

export interface AtomicWriteOptions {
  /** Sets the file's mtime before the rename (ms since the epoch). */
  mtimeMs?: number;
  /** fsync the file and its directory; off only for caches that may be lost. */
  durable?: boolean;
  /** File mode for the new file. */
  mode?: number;
}

/**
 * A durable write larger than this is synced every this many bytes, not once at the end. On ext4 one fsync of
 * a 156 MB snapshot file made the journal's small fsyncs beside it wait up to 95-192 ms for its writeback on an
 * idle machine (20-25 ms when synced every 16 MiB), and a publish waited seconds under load.
 */
export const SYNC_STEP_BYTES = 16 * 1024 * 1024;

/** `parts` cut into runs of at most `stepBytes` bytes (views, no copy). */
export function inSteps(parts: readonly Uint8Array[], stepBytes: number): Uint8Array[][] {
  const steps: Uint8Array[][] = [];
  let step: Uint8Array[] = [];
  let room = stepBytes;
  for (const part of parts) {
    for (let at = 0; at < part.length;) {
      const length = Math.min(room, part.length - at);
      step.push(part.subarray(at, at + length));
      at += length;
      room -= length;
      if (room === 0) {
        steps.push(step);
        step = [];
        room = stepBytes;
      }
    }
  }
  if (step.length > 0 || steps.length === 0) steps.push(step);
  return steps;
}

/** A temp name beside `path`, so the rename stays on one filesystem. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.tmp-${basename(path)}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * Writes `data` to `path` so that a reader (or a crash) sees the old file or
 * the new one, never a part: temp file, fsync, rename, fsync the directory.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string | readonly Uint8Array[],
  options: AtomicWriteOptions = {},
): Promise<void> {
  const durable = options.durable ?? true;
  const temp = tempPathFor(path);
  const handle = await open(temp, 'wx', options.mode ?? 0o644);
  try {
    // Parts are written as they are (a large record need not be copied into one buffer first).
    const parts =
      typeof data === 'string' ? [Buffer.from(data)] : Array.isArray(data) ? (data as readonly Uint8Array[]) : [data as Uint8Array];
    for (const [index, step] of inSteps(parts, SYNC_STEP_BYTES).entries()) {
      if (durable && index > 0) await handle.datasync();
      await writeAll(handle, step);
    }
    if (durable) await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(temp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    if (options.mtimeMs !== undefined) {
      const seconds = options.mtimeMs / 1000;
      await utimes(temp, seconds, seconds);
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  if (durable) await fsyncDir(dirname(path));
}

/** fsyncDir for code that runs synchronously (a worker thread writing a snapshot file). */
export function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeAll(handle: FileHandle, parts: readonly Uint8Array[]): Promise<void> {
  let pending = parts.filter((part) => part.length > 0);
  while (pending.length > 0) {
    let { bytesWritten } = await handle.writev(pending);
    // A short writev leaves the rest of the parts: drop what went, slice the part it stopped in.
    while (pending.length > 0 && bytesWritten >= pending[0]!.length) {
      bytesWritten -= pending[0]!.length;
      pending = pending.slice(1);
    }
    if (pending.length > 0 && bytesWritten > 0) pending = [pending[0]!.subarray(bytesWritten), ...pending.slice(1)];
  }
}
