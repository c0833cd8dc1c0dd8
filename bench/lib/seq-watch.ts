import type { Agent } from 'node:http';
import { httpRequest } from './http.js';

/** The generation a mirror's response was served from (packages/shared/src/protocol.ts HEADERS.seq). */
export const SEQ_HEADER = 'x-metasync-seq';

export interface SeqWatcher {
  /** Resolves with the hrtime of the first response served from generation `seq` or later. */
  waitFor(seq: number, timeoutMs: number): Promise<bigint>;
}

interface Waiter {
  seq: number;
  deadlineMs: number;
  resolve: (atNs: bigint) => void;
  reject: (err: Error) => void;
}

/**
 * One poll loop per mirror, whatever the number of publishes in flight: while
 * anyone waits, `HEAD /packages.json` (one request in flight at a time) and
 * read the generation it was served from. Generations are atomic on a
 * mirror, so "served from >= S" means every path of S is visible. Idle when
 * nobody waits, so it adds no load between publishes.
 */
export function createSeqWatcher(options: { baseUrl: string; agent: Agent; intervalMs: number }): SeqWatcher {
  const waiters: Waiter[] = [];
  let running = false;
  const settle = (observedSeq: number, atNs: bigint): void => {
    const nowMs = Date.now();
    for (let index = waiters.length - 1; index >= 0; index--) {
      const waiter = waiters[index] as Waiter;
      if (waiter.seq <= observedSeq) waiter.resolve(atNs);
      else if (nowMs > waiter.deadlineMs) waiter.reject(new Error(`${options.baseUrl} did not serve generation ${waiter.seq} in time (last served ${observedSeq})`));
      else continue;
      waiters.splice(index, 1);
    }
  };
  const loop = async (): Promise<void> => {
    running = true;
    try {
      for (let attempt = 0; waiters.length > 0 && attempt < 100_000_000; attempt++) {
        const response = await httpRequest(`${options.baseUrl}/packages.json`, { method: 'HEAD', agent: options.agent });
        const atNs = process.hrtime.bigint();
        const observed = Number(response.headers[SEQ_HEADER]);
        if (response.status !== 200 || !Number.isInteger(observed)) {
          throw new Error(`HEAD ${options.baseUrl}/packages.json: expected 200 with ${SEQ_HEADER}, got ${response.status} with ${String(response.headers[SEQ_HEADER])}`);
        }
        settle(observed, atNs);
        if (waiters.length > 0 && options.intervalMs > 0) await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
      }
    } catch (err) {
      for (const waiter of waiters.splice(0)) waiter.reject(err instanceof Error ? err : new Error(String(err)));
    } finally {
      running = false;
    }
  };
  return {
    waitFor(seq, timeoutMs) {
      return new Promise<bigint>((resolve, reject) => {
        waiters.push({ seq, deadlineMs: Date.now() + timeoutMs, resolve, reject });
        if (!running) void loop();
      });
    },
  };
}
