import { Counter, type Registry } from 'prom-client';
import type { AnswerCounts } from '../serve/repository-answer.js';

/**
 * What each serving thread counts, in one shared Float64Array: a slot of
 * FIELDS numbers per worker, written by that worker only (a restarted worker
 * takes over its slot and adds to it, so the counters never go back), read by
 * the main thread at scrape time. No message per request.
 */
export const FIELD = { requests: 0, fast: 1, forwarded: 2, ok: 3, notModified: 4, cacheHits: 5, cacheMisses: 6 } as const;
/** 7 numbers used, a slot padded to 128 bytes: two workers' per-request writes never share a cache line. */
const FIELDS = 16;

export function createWorkerCounters(workers: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(workers * FIELDS * Float64Array.BYTES_PER_ELEMENT));
}

/** A worker's writer for its slot. */
export function workerSlot(counters: Float64Array, worker: number) {
  const base = worker * FIELDS;
  const reported: AnswerCounts = { ok: 0, notModified: 0, cacheHits: 0, cacheMisses: 0 };
  return {
    request(fast: boolean): void {
      counters[base + FIELD.requests]!++;
      counters[base + (fast ? FIELD.fast : FIELD.forwarded)]!++;
    },
    /** Adds what the worker's answers counted since the last call. */
    answers(counts: Readonly<AnswerCounts>): void {
      counters[base + FIELD.ok]! += counts.ok - reported.ok;
      counters[base + FIELD.notModified]! += counts.notModified - reported.notModified;
      counters[base + FIELD.cacheHits]! += counts.cacheHits - reported.cacheHits;
      counters[base + FIELD.cacheMisses]! += counts.cacheMisses - reported.cacheMisses;
      Object.assign(reported, counts);
    },
  };
}

/** Every worker's answer counts added up (the app folds them into the responses and hot cache counters). */
export function sumAnswerCounts(counters: Float64Array): AnswerCounts {
  const sum: AnswerCounts = { ok: 0, notModified: 0, cacheHits: 0, cacheMisses: 0 };
  for (let base = 0; base < counters.length; base += FIELDS) {
    sum.ok += counters[base + FIELD.ok]!;
    sum.notModified += counters[base + FIELD.notModified]!;
    sum.cacheHits += counters[base + FIELD.cacheHits]!;
    sum.cacheMisses += counters[base + FIELD.cacheMisses]!;
  }
  return sum;
}

/** `metasync_mirror_worker_requests_total{worker, route}`: route `fast` (answered in the worker) or `forwarded` (main thread). */
export function registerWorkerMetrics(registry: Registry, counters: Float64Array): void {
  new Counter({
    name: 'metasync_mirror_worker_requests_total',
    help: 'requests each serving thread received, by where they were answered (fast: in the worker; forwarded: main thread)',
    labelNames: ['worker', 'route'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (let base = 0, worker = 0; base < counters.length; base += FIELDS, worker++) {
        this.inc({ worker: String(worker), route: 'fast' }, counters[base + FIELD.fast]!);
        this.inc({ worker: String(worker), route: 'forwarded' }, counters[base + FIELD.forwarded]!);
      }
    },
  });
}
