/**
 * Readahead for the main thread's synchronous source reads (prepare-pool.ts):
 * a path is handed to a thread (readahead-worker.ts) when it is touched, and
 * that thread reads it ahead of the read queue, so the main thread's read hits
 * the page cache. On a cold start-up ingest the main thread otherwise waits on
 * the disk for each file in turn (~165 us a file measured, a quarter of its time).
 *
 * Paths go over in one message per event-loop turn; the thread is unref'd and
 * holds nothing but a 256 KiB scratch buffer.
 */
import { Worker } from 'node:worker_threads';
import { sep } from 'node:path';

export interface Readahead {
  /** `relPath` (under the root) will be read soon. */
  hint(relPath: string): void;
  close(): Promise<void>;
}

export function createReadahead(options: { rootReal: string; maxFileBytes: number }): Readahead {
  const fromSources = import.meta.url.endsWith('.ts');
  const worker = new Worker(new URL(fromSources ? './readahead-worker.ts' : './readahead-worker.js', import.meta.url), {
    workerData: { maxFileBytes: options.maxFileBytes },
    ...(fromSources ? { execArgv: ['--conditions=source', '--import', 'tsx'] } : {}),
  });
  worker.unref();
  // A readahead that fails costs only speed.
  worker.on('error', () => undefined);
  let pending: string[] = [];
  let scheduled = false;
  let closed = false;

  function send(): void {
    scheduled = false;
    if (closed || pending.length === 0) return;
    worker.postMessage(pending);
    pending = [];
  }

  return {
    hint(relPath) {
      if (closed) return;
      pending.push(`${options.rootReal}${sep}${relPath.split('/').join(sep)}`);
      if (!scheduled) {
        scheduled = true;
        setImmediate(send);
      }
    },
    async close() {
      closed = true;
      await worker.terminate();
    },
  };
}
