/**
 * Turns file events under --source into publisher submits, in two parts:
 *
 *   event -> path-settler.ts (is the file complete yet?) -> batch-submitter.ts (batch, submit, retry)
 *
 * This file wires them together and answers the watcher's two waits, `settled()`
 * and `idle()`, from one set of conditions re-checked whenever either part
 * reports progress.
 */
import type { Logger } from '@metasync/shared/daemon';
import type { Publisher } from '../publish/publisher.js';
import { createBatchSubmitter } from './batch-submitter.js';
import { createConditions } from './conditions.js';
import { createPathSettler } from './path-settler.js';
import type { FileIdentity, SourceFile } from './paths.js';
import type { PreparedRead } from './prepare.js';

export interface SourceIngestOptions {
  publisher: Publisher;
  log: Logger;
  /** Reads and prepares a file (prepare.ts, in a prepare thread). */
  read(path: string): Promise<PreparedRead>;
  /** A touched path will be read (a readahead hint). */
  willRead?(path: string): void;
  stat(path: string): Promise<FileIdentity | undefined>;
  stabilityWindowMs?: number;
  jsonSettleMs?: number;
  /** Delays after an event-driven read at which the file is stat'ed again for a lost event. */
  recheckDelaysMs?: readonly number[];
  readConcurrency?: number;
  /** Most paths in one submit; reads pause while the batch is this full. */
  maxBatchPaths?: number;
  /** Every complete file read, with its hash (the start-up stat cache records them). */
  onFile?(path: string, file: SourceFile, sha256: string): void;
}

export interface SourceIngest {
  /** A file was created or changed. */
  touch(path: string, options?: { recheck?: boolean }): void;
  /** A file was removed. */
  remove(path: string): void;
  /** Whether `path` is known here: pending or refused in the settler, or published by the watcher (a reconcile walk then re-reads it only when it changed). */
  tracks(path: string): boolean;
  /** Resolves once every pending read, wait and submit has finished. */
  idle(): Promise<void>;
  /** Resolves once every pending read and wait has finished (changes may still sit in the batch). */
  settled(): Promise<void>;
  /**
   * Resolves once fewer than `limit` paths have something pending. A walk that touches a whole tree awaits it
   * between touches: each pending path holds a state and a queued read, and a million of them took 2 GB.
   */
  roomFor(limit: number): Promise<void>;
  /** Holds submits (except a full batch) until release(), so a reconcile lands in as few generations as possible. */
  hold(): void;
  release(): void;
  /** Stops timers and waits for reads and submits already started. */
  close(): Promise<void>;
}

export function createSourceIngest(options: SourceIngestOptions): SourceIngest {
  const conditions = createConditions();
  const check = (): void => conditions.notify();
  const submitter = createBatchSubmitter({
    publisher: options.publisher,
    log: options.log,
    maxBatchPaths: options.maxBatchPaths ?? 2_000,
    onProgress: check,
  });
  const settler = createPathSettler({
    log: options.log,
    read: options.read,
    stat: options.stat,
    stabilityWindowMs: options.stabilityWindowMs ?? 200,
    jsonSettleMs: options.jsonSettleMs ?? 2_000,
    recheckDelaysMs: options.recheckDelaysMs ?? [20, 150],
    readConcurrency: options.readConcurrency ?? 64,
    waitForRoom: submitter.waitForRoom,
    onTouch: submitter.cancelRetry,
    onComplete(path, file, stored) {
      // The hash of what is stored, so the stat cache's line can be matched against the manifest.
      options.onFile?.(path, file, stored.sha256);
      submitter.add(path, stored);
    },
    onProgress: check,
  });
  const isSettled = settler.isSettled;
  const isIdle = (): boolean => isSettled() && submitter.isIdle();
  let closed = false;

  return {
    touch(path, touchOptions) {
      // A file named like a daemon route is refused (logged, counted) before it is even read.
      if (closed || options.publisher.refusesPath(path, 'watch')) return;
      options.willRead?.(path);
      settler.touch(path, touchOptions);
    },
    tracks: (path) => settler.tracks(path) || options.publisher.getEntry(path)?.origin === 'watch',
    remove(path) {
      if (closed) return;
      settler.forget(path);
      submitter.remove(path);
    },
    idle: () => conditions.until(isIdle),
    settled: () => conditions.until(isSettled),
    // Also true once closed: a closed settler keeps the states it dropped the reads of, and a walk waiting here must end.
    roomFor: (limit) => {
      const room = (): boolean => closed || settler.pendingPaths() < limit;
      return room() ? Promise.resolve() : conditions.until(room);
    },
    hold: submitter.hold,
    release() {
      submitter.release();
      check();
    },
    async close() {
      closed = true;
      check();
      submitter.stop();
      await settler.close();
      await submitter.finish();
      check();
    },
  };
}
