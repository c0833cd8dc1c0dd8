/**
 * Readahead for the main thread's synchronous source reads (prepare-pool.ts):
 * a path is handed to a thread (readahead-worker.ts) when it is touched, and
 * that thread reads it while the path waits in the read queue, so the main
 * thread's read usually hits the page cache. On a cold start-up ingest the
 * main thread otherwise waits on the disk for each file in turn (about a
 * quarter of its time at 100k paths). Only with prepare threads at 0: threads
 * read in parallel themselves.
 *
 * Paths go over in one message per event-loop turn; at most MAX_OUTSTANDING
 * paths are hinted and not yet read (past it, hints are dropped: the read
 * just misses the cache). The thread is unref'd and holds a 256 KiB scratch buffer.
 */
import { Worker } from 'node:worker_threads';
import { sep } from 'node:path';

export interface Readahead {
  /** `relPath` (under the root) will be read soon. */
  hint(relPath: string): void;
  /** Hints taken, files the thread read of them, hints it has gone through, hints dropped (too many outstanding). */
  stats(): { hinted: number; warmed: number; done: number; dropped: number };
  close(): Promise<void>;
}

const MAX_OUTSTANDING = 16_384;

export function createReadahead(options: { rootReal: string; maxFileBytes: number }): Readahead {
  const fromSources = import.meta.url.endsWith('.ts');
  const worker = new Worker(new URL(fromSources ? './readahead-worker.ts' : './readahead-worker.js', import.meta.url), {
    workerData: { rootReal: options.rootReal, maxFileBytes: options.maxFileBytes },
    ...(fromSources ? { execArgv: ['--conditions=source', '--import', 'tsx'] } : {}),
  });
  worker.unref();
  const counts = { hinted: 0, warmed: 0, done: 0, dropped: 0 };
  let pending: string[] = [];
  let scheduled = false;
  let closed = false;
  worker.on('message', (report: { done: number; warmed: number }) => {
    counts.done += report.done;
    counts.warmed += report.warmed;
  });
  // A readahead that fails costs only speed: hints are dropped from then on.
  worker.on('error', () => {
    closed = true;
  });

  function send(): void {
    scheduled = false;
    if (closed || pending.length === 0) return;
    worker.postMessage(pending);
    pending = [];
  }

  return {
    hint(relPath) {
      if (closed) return;
      if (counts.hinted - counts.done >= MAX_OUTSTANDING) {
        counts.dropped++;
        return;
      }
      counts.hinted++;
      pending.push(`${options.rootReal}${sep}${relPath.split('/').join(sep)}`);
      if (!scheduled) {
        scheduled = true;
        setImmediate(send);
      }
    },
    stats: () => ({ ...counts }),
    async close() {
      closed = true;
      await worker.terminate();
    },
  };
}
