import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** Larger bodies are read asynchronously (or streamed) by fastify: a sync read must stay short. */
export const MAX_SYNC_READ_BYTES = 1024 * 1024;

/**
 * A whole object file: 'absent' when it does not exist (a variant the object
 * lacks), undefined when it cannot be served from here (larger than the cap,
 * shorter than its size, EMFILE...): the careful route then reads it again and
 * reports what it finds. Objects are immutable, so fstat's size is the file.
 * `allocate` gives the buffer to read into (the hot cache's room for it, or a
 * fresh one), once the size is known.
 */
export function readWholeSync(file: string, allocate: (size: number) => Buffer = allocateFresh): Buffer | 'absent' | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return 'absent';
    if (errnoOf(err) !== undefined) return undefined;
    throw err;
  }
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_SYNC_READ_BYTES) return undefined;
    const body = allocate(size);
    let filled = 0;
    while (filled < size) {
      const read = readSync(fd, body, filled, size - filled, filled);
      if (read === 0) return undefined;
      filled += read;
    }
    return body;
  } catch (err) {
    if (errnoOf(err) !== undefined) return undefined;
    throw err;
  } finally {
    closeSync(fd);
  }
}

function allocateFresh(size: number): Buffer {
  return Buffer.allocUnsafe(size);
}

function errnoOf(err: unknown): string | undefined {
  const code = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
  return typeof code === 'string' ? code : undefined;
}
