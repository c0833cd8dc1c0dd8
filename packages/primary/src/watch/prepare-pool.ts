/**
 * The threads that prepare source files (prepare.ts) beside the main thread.
 * Before them, an ingest kept the main thread busy with each file's five
 * threadpool reads, its JSON parse, three hashes and its gzip; a 2-core
 * machine's second core did little. Now the main thread batches, stores and
 * commits, and the files' CPU work runs on the other cores.
 *
 * `threads: 0` prepares in the calling thread (tests, and a machine of one core).
 * Run from TypeScript sources (tests), the thread loads its module through tsx.
 */
import { Piscina } from 'piscina';
import { prepareSourceFile, type PrepareSettings, type PreparedRead } from './prepare.js';

export interface PreparePool {
  prepare(relPath: string): Promise<PreparedRead>;
  /** Waits for the tasks already given, then stops the threads. */
  close(): Promise<void>;
}

/** Tasks queued in each thread ahead of the one it runs, so a thread does not idle while the main thread is busy. */
const TASKS_PER_THREAD = 4;

export function createPreparePool(settings: PrepareSettings, threads: number): PreparePool {
  if (threads === 0) return { prepare: (relPath) => prepareSourceFile(settings, relPath), close: async () => undefined };
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
