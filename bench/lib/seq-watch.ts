import type { Agent } from 'node:http';
import type { Readable } from 'node:stream';
import { httpRequest } from './http.js';

/** The generation a mirror's response was served from (packages/shared/src/protocol/routes.ts HEADERS.seq). */
export const SEQ_HEADER = 'x-metasync-seq';
/** The mirror's log line after it made a generation visible (packages/mirror/src/sync/puller.ts). */
const APPLIED_MESSAGES = new Set(['generation applied', 'snapshot applied']);

export interface SeqWatcher {
  /** Resolves with the hrtime of the first evidence that the mirror serves generation `seq` or later. */
  waitFor(seq: number, timeoutMs: number): Promise<bigint>;
  /** How many waits each kind of evidence settled first. */
  settledBy(): { log: number; probe: number };
  close(): void;
}

interface Waiter {
  seq: number;
  deadlineMs: number;
  resolve: (atNs: bigint) => void;
  reject: (err: Error) => void;
}

/**
 * Two kinds of evidence, whichever comes first:
 * - the mirror's own `generation applied` log line (read from its stdout pipe
 *   as it is written: no load on the mirror at all; it is logged after the
 *   switch, so it is never early);
 * - one probe loop per mirror, whatever the number of publishes in flight:
 *   while anyone waits, `HEAD /packages.json` every `intervalMs` (one request
 *   in flight) and read the generation it was served from. Generations are
 *   atomic on a mirror, so "served from >= S" means every path of S is visible.
 * The probe keeps the figure honest if the log line changes or is delayed.
 */
export function createSeqWatcher(options: { baseUrl: string; agent: Agent; intervalMs: number; stdout?: Readable | null }): SeqWatcher {
  const waiters: Waiter[] = [];
  const counts = { log: 0, probe: 0 };
  let running = false;
  let closed = false;
  const settle = (observedSeq: number, atNs: bigint, source: 'log' | 'probe'): void => {
    const nowMs = Date.now();
    for (let index = waiters.length - 1; index >= 0; index--) {
      const waiter = waiters[index] as Waiter;
      if (waiter.seq <= observedSeq) {
        counts[source]++;
        waiter.resolve(atNs);
      } else if (nowMs > waiter.deadlineMs) {
        waiter.reject(new Error(`${options.baseUrl} did not serve generation ${waiter.seq} in time (last seen ${observedSeq})`));
      } else continue;
      waiters.splice(index, 1);
    }
  };
  let pending = '';
  const onStdout = (chunk: Buffer | string): void => {
    const atNs = process.hrtime.bigint();
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.includes('applied')) continue;
      let entry: { msg?: unknown; seq?: unknown };
      try {
        entry = JSON.parse(line) as { msg?: unknown; seq?: unknown };
      } catch {
        continue; // not a JSON log line: not evidence
      }
      if (typeof entry.msg === 'string' && APPLIED_MESSAGES.has(entry.msg) && typeof entry.seq === 'number') settle(entry.seq, atNs, 'log');
    }
  };
  options.stdout?.on('data', onStdout);
  const loop = async (): Promise<void> => {
    running = true;
    try {
      for (let attempt = 0; waiters.length > 0 && !closed && attempt < 100_000_000; attempt++) {
        const response = await httpRequest(`${options.baseUrl}/packages.json`, { method: 'HEAD', agent: options.agent });
        const atNs = process.hrtime.bigint();
        const observed = Number(response.headers[SEQ_HEADER]);
        if (response.status !== 200 || !Number.isInteger(observed)) {
          throw new Error(
            `HEAD ${options.baseUrl}/packages.json: expected 200 with ${SEQ_HEADER}, got ${response.status} with ${String(response.headers[SEQ_HEADER])}`,
          );
        }
        settle(observed, atNs, 'probe');
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
    settledBy: () => ({ ...counts }),
    close() {
      closed = true;
      options.stdout?.off('data', onStdout);
    },
  };
}
