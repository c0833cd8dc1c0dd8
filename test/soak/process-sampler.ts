import { readdir, readlink } from 'node:fs/promises';
import { hasErrno } from '@metasync/shared';
import { readProcMemory } from '../helpers/proc-stats.js';

/**
 * RSS and open file descriptors of a process (Linux /proc). One reading is
 * noisy: V8 grows and shrinks its heap between collections and every live
 * connection holds a descriptor. So a sample is `count` readings `gapMs`
 * apart, summarised by the median RSS and the minimum descriptor counts (the
 * floor without transient connections). Sockets are counted apart from the
 * rest (files, pipes, epoll/event fds): the rest must not grow at all, while
 * sockets follow the connection pools, whose width varies with load.
 */
export interface ProcessSample {
  rssBytes: number;
  /** All open descriptors (floor). */
  fds: number;
  /** Descriptors that are sockets (floor). */
  sockets: number;
  /** Descriptors that are not sockets (floor). */
  otherFds: number;
  /**
   * V8 heap in use (median), from the daemon's Prometheus `nodejs_heap_size_used_bytes`:
   * RSS also holds heap V8 reserved but does not use and native memory, so a
   * flat heap beside a rising RSS says "no JavaScript leak".
   */
  heapUsedBytes?: number | undefined;
}

export async function countOpenFds(pid: number): Promise<{ total: number; sockets: number }> {
  const dir = `/proc/${pid}/fd`;
  const names = await readdir(dir);
  let sockets = 0;
  let total = 0;
  for (const name of names) {
    try {
      if ((await readlink(`${dir}/${name}`)).startsWith('socket:')) sockets++;
      total++;
    } catch (err) {
      // Closed between readdir and readlink: no longer open.
      if (!hasErrno(err, 'ENOENT')) throw err;
    }
  }
  return { total, sockets };
}

async function heapUsedOf(metricsUrl: string): Promise<number | undefined> {
  const response = await fetch(metricsUrl, { signal: AbortSignal.timeout(5_000) });
  const match = /^nodejs_heap_size_used_bytes (\d+)/m.exec(await response.text());
  return match === null ? undefined : Number(match[1]);
}

export async function sampleProcess(
  pid: number,
  options: { count: number; gapMs: number; metricsUrl?: string | undefined },
): Promise<ProcessSample> {
  const rss: number[] = [];
  const heap: number[] = [];
  const fds: number[] = [];
  const sockets: number[] = [];
  const others: number[] = [];
  for (let i = 0; i < options.count; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, options.gapMs));
    rss.push((await readProcMemory(pid)).rssBytes);
    const counted = await countOpenFds(pid);
    fds.push(counted.total);
    sockets.push(counted.sockets);
    others.push(counted.total - counted.sockets);
    const heapUsed = options.metricsUrl === undefined ? undefined : await heapUsedOf(options.metricsUrl);
    if (heapUsed !== undefined) heap.push(heapUsed);
  }
  return {
    rssBytes: median(rss)!,
    fds: Math.min(...fds),
    sockets: Math.min(...sockets),
    otherFds: Math.min(...others),
    heapUsedBytes: median(heap),
  };
}

function median(values: number[]): number | undefined {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export async function sampleProcesses(
  pids: Record<string, number>,
  options: { count: number; gapMs: number; metricsUrls?: Record<string, string> },
): Promise<Record<string, ProcessSample>> {
  const entries = await Promise.all(
    Object.entries(pids).map(
      async ([name, pid]) => [name, await sampleProcess(pid, { ...options, metricsUrl: options.metricsUrls?.[name] })] as const,
    ),
  );
  return Object.fromEntries(entries);
}
