/**
 * Where source files are prepared (prepare.ts): in the main thread (`threads: 0`,
 * the default), or in threads beside it, the main thread then only batching,
 * storing and committing.
 *
 * Measured on the 100k bench corpus, 2 cores, cold page cache (docs/publishing.md):
 * 0 threads 63.6 s wall, 66 s CPU, 466 MB RSS; 1 thread 80 s, 110 s, 613 MB;
 * 2 threads 61 s, 102 s, 755 MB; 3 threads 56 s, 100 s, 846 MB. Each thread is
 * an isolate of its own with its own heap and collector, and on two cores they
 * compete with the main thread for the same CPU. Hence no threads by default.
 *
 * Run from TypeScript sources (tests), a thread loads its module through tsx.
 */
import { Piscina } from 'piscina';
import { createLoopSlices } from '@metasync/shared/daemon';
import { createReadahead } from './readahead.js';
import { prepareSourceFile, type PrepareSettings, type PreparedRead } from './prepare.js';

export interface PreparePool {
  /** `relPath` is about to be read: in the main thread, a readahead thread reads it into the page cache first. */
  willRead(relPath: string): void;
  prepare(relPath: string): Promise<PreparedRead>;
  /** Waits for the tasks already given, then stops the threads. */
  close(): Promise<void>;
}

/** Tasks queued in each thread ahead of the one it runs, so a thread does not idle while the main thread is busy. */
const TASKS_PER_THREAD = 4;

export function createPreparePool(settings: PrepareSettings, threads: number): PreparePool {
  if (threads === 0) {
    // Reads that complete without a threadpool turn would otherwise chain through a whole burst in one turn.
    const slices = createLoopSlices();
    const readahead = createReadahead({ rootReal: settings.rootReal, maxFileBytes: settings.maxFileBytes });
    return {
      willRead: readahead.hint,
      async prepare(relPath) {
        await slices.turn();
        return prepareSourceFile(settings, relPath);
      },
      close: readahead.close,
    };
  }
  const fromSources = import.meta.url.endsWith('.ts');
  const pool = new Piscina<string, PreparedRead>({
    filename: new URL(fromSources ? './prepare-worker.ts' : './prepare-worker.js', import.meta.url).href,
    minThreads: threads,
    maxThreads: threads,
    concurrentTasksPerWorker: TASKS_PER_THREAD,
    idleTimeout: Number.POSITIVE_INFINITY,
    workerData: settings,
    ...(fromSources ? { execArgv: ['--conditions=source', '--import', 'tsx'] } : {}),
  });
  return {
    willRead: () => undefined,
    prepare: async (relPath) => asBuffers(await pool.run(relPath)),
    close: () => pool.close(),
  };
}

/** A Buffer crosses a thread as a plain Uint8Array: viewed as a Buffer again, not copied. */
function asBuffers(read: PreparedRead): PreparedRead {
  if (read.kind !== 'file') return read;
  const { file, stored } = read;
  return {
    kind: 'file',
    file: { ...file, bytes: asBuffer(file.bytes) },
    stored: { ...stored, content: asBuffer(stored.content), gzip: stored.gzip === undefined ? undefined : asBuffer(stored.gzip) },
  };
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
