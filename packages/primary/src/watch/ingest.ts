/**
 * Turns file events under --source into publisher submits.
 *
 * When is a file complete? (a half-written file is never published)
 * - `*.json`: as soon as its bytes parse as JSON. An atomic writer (temp file +
 *   rename) is read once and published at once, with no added delay; a writer
 *   that writes in place over several syscalls leaves JSON that does not parse
 *   until the last byte lands, so we wait for the next event, re-reading with a
 *   short backoff in case that event was coalesced away. JSON that still does
 *   not parse `jsonSettleMs` after the last event is refused (logged), and the
 *   previously published version stays.
 * - any other file: when it has had no event for `stabilityWindowMs`.
 * - after an event-driven read, a stat 20 ms and 150 ms later catches a write
 *   whose event was lost: chokidar throttles events 5 ms apart and re-arms its
 *   watcher after a rename-over, and a write landing in between sends nothing.
 *
 * Batching: ready changes collect in `batch`; one submit is in flight at a time,
 * so a burst of thousands of files becomes a few generations while a lone
 * change goes out on the next turn of the event loop.
 *
 *   event -> touch(path) -> [timer] -> read (p-queue) -> complete? -> batch -> submit
 *                                                          \-> not yet: retry/wait
 */
import { metasyncError, sha256Hex, type Logger } from '@metasync/shared';
import PQueue from 'p-queue';
import type { Publisher, SourceChange } from '../publish/publisher.js';
import { NOT_JSON, p2Problem, parseJson } from './content.js';
import type { SourceFile, SourceRead } from './paths.js';

export interface SourceIngestOptions {
  publisher: Publisher;
  log: Logger;
  read(path: string): Promise<SourceRead>;
  stat(path: string): Promise<{ size: number; mtimeMs: number; ino: number } | undefined>;
  stabilityWindowMs?: number;
  jsonSettleMs?: number;
  /** Delays after an event-driven read at which the file is stat'ed again for a lost event. */
  recheckDelaysMs?: readonly number[];
  readConcurrency?: number;
  /** Most paths in one submit; reads pause while the batch is this full. */
  maxBatchPaths?: number;
}

export interface SourceIngest {
  /** A file was created or changed. */
  touch(path: string, options?: { recheck?: boolean }): void;
  /** A file was removed. */
  remove(path: string): void;
  /** Resolves once every pending read, wait and submit has finished. */
  idle(): Promise<void>;
  /** Resolves once every pending read and wait has finished (changes may still sit in the batch). */
  settled(): Promise<void>;
  /** Holds submits (except a full batch) until release(), so a reconcile lands in as few generations as possible. */
  hold(): void;
  release(): void;
  /** Stops timers and waits for reads and submits already started. */
  close(): Promise<void>;
}

interface PathState {
  token: number;
  timer: NodeJS.Timeout | undefined;
  /** Waiting for a timer that leads to a read (counts as busy). */
  waiting: boolean;
  jsonFailSince: number | undefined;
  jsonAttempts: number;
  /** Whether the read for the current token came from an event (the reconcile walk needs no recheck). */
  recheck: boolean;
}

const DELETED = 'deleted';

export function createSourceIngest(options: SourceIngestOptions): SourceIngest {
  const { publisher, log } = options;
  const stabilityWindowMs = options.stabilityWindowMs ?? 200;
  const jsonSettleMs = options.jsonSettleMs ?? 2_000;
  const recheckDelaysMs = options.recheckDelaysMs ?? [20, 150];
  const maxBatchPaths = options.maxBatchPaths ?? 2_000;
  const reads = new PQueue({ concurrency: options.readConcurrency ?? 64 });
  const states = new Map<string, PathState>();
  const batch = new Map<string, { change: SourceChange; sha: string }>();
  /** sha (or DELETED) of changes queued or in flight, ahead of the manifest. */
  const queued = new Map<string, string>();
  let waitingTimers = 0;
  let flushScheduled = false;
  let inFlight: Promise<void> | undefined;
  let closed = false;
  let held = false;
  let waiters: Array<{ ready: () => boolean; resolve: () => void }> = [];
  let drainWaiters: Array<() => void> = [];
  /**
   * Changes whose publish failed (S3 unreachable, disk full...): retried with
   * backoff until they go through, unless a newer event for the path takes
   * over. Without this a refused change waited for the file to change again.
   * A pending retry does not count as busy: startup must not hang on an outage.
   */
  const retrying = new Map<string, { change: SourceChange; sha: string }>();
  let retryTimer: NodeJS.Timeout | undefined;
  let retryFailures = 0;

  function stateOf(path: string): PathState {
    let state = states.get(path);
    if (state === undefined) {
      state = { token: 0, timer: undefined, waiting: false, jsonFailSince: undefined, jsonAttempts: 0, recheck: true };
      states.set(path, state);
    }
    return state;
  }

  function clearTimer(state: PathState): void {
    if (state.timer !== undefined) clearTimeout(state.timer);
    state.timer = undefined;
    if (state.waiting) waitingTimers--;
    state.waiting = false;
  }

  function wait(state: PathState, delayMs: number, then: () => void, busy: boolean): void {
    clearTimer(state);
    state.waiting = busy;
    if (busy) waitingTimers++;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      if (state.waiting) waitingTimers--;
      state.waiting = false;
      then();
      checkIdle();
    }, delayMs);
    state.timer.unref?.();
  }

  function isSettled(): boolean {
    return waitingTimers === 0 && reads.size === 0 && reads.pending === 0;
  }

  function isIdle(): boolean {
    return isSettled() && batch.size === 0 && inFlight === undefined && !flushScheduled;
  }

  function checkIdle(): void {
    if (waiters.length === 0) return;
    const still: typeof waiters = [];
    for (const waiter of waiters) {
      if (waiter.ready()) waiter.resolve();
      else still.push(waiter);
    }
    waiters = still;
  }

  function until(ready: () => boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      if (ready()) resolve();
      else waiters.push({ ready, resolve });
    });
  }

  function currentSha(path: string): string | undefined {
    return queued.get(path) ?? publisher.getEntry(path)?.sha256;
  }

  function touch(path: string, touchOptions: { recheck?: boolean } = {}): void {
    if (closed) return;
    const state = stateOf(path);
    retrying.delete(path);
    state.token++;
    state.recheck = touchOptions.recheck ?? true;
    state.jsonFailSince = undefined;
    state.jsonAttempts = 0;
    const token = state.token;
    if (path.endsWith('.json')) {
      clearTimer(state);
      enqueueRead(path, token);
    } else {
      wait(state, stabilityWindowMs, () => enqueueRead(path, token), true);
    }
  }

  function enqueueRead(path: string, token: number): void {
    void reads.add(async () => {
      while (batch.size >= maxBatchPaths && !closed) {
        scheduleFlush();
        await new Promise<void>((resolve) => drainWaiters.push(resolve));
      }
      const state = states.get(path);
      if (closed || state === undefined || state.token !== token) return;
      let result: SourceRead;
      try {
        result = await options.read(path);
      } catch (err) {
        log.error({ err, path }, 'source file read failed');
        return;
      }
      if (state.token !== token) return; // a newer event owns this path now
      handleRead(path, state, token, result);
    }).finally(checkIdle);
  }

  function refuse(path: string, reason: string): void {
    const err = metasyncError('METASYNC_ERR_SOURCE_REFUSED', `source file ${path} refused: ${reason}`, { path, reason });
    log.error({ err, path, reason }, 'source file refused');
  }

  function handleRead(path: string, state: PathState, token: number, result: SourceRead): void {
    if (result.kind === 'missing' || result.kind === 'skipped') return; // an unlink event follows, or nothing to publish
    if (result.kind === 'refused') {
      refuse(path, result.reason);
      return;
    }
    const document = path.endsWith('.json') ? parseJson(result.file.bytes) : undefined;
    if (document === NOT_JSON) {
      state.jsonFailSince ??= Date.now();
      if (Date.now() - state.jsonFailSince >= jsonSettleMs) {
        state.jsonFailSince = undefined;
        refuse(path, `not valid JSON ${jsonSettleMs} ms after its last change`);
        return;
      }
      const delayMs = Math.min(25 * 2 ** state.jsonAttempts++, 400);
      wait(state, delayMs, () => enqueueRead(path, token), true);
      return;
    }
    state.jsonFailSince = undefined;
    const problem = p2Problem(path, document);
    if (problem !== undefined) {
      refuse(path, problem);
      return;
    }
    accept(path, result.file);
    if (state.recheck) scheduleRecheck(path, state, token, result.file, 0);
  }

  function scheduleRecheck(path: string, state: PathState, token: number, seen: SourceFile, attempt: number): void {
    const delayMs = recheckDelaysMs[attempt];
    if (delayMs === undefined) return;
    const sincePrevious = delayMs - (recheckDelaysMs[attempt - 1] ?? 0);
    wait(state, sincePrevious, () => void recheck(path, token, seen, attempt), false);
  }

  async function recheck(path: string, token: number, seen: SourceFile, attempt: number): Promise<void> {
    const now = await options.stat(path).catch((err: unknown) => {
      log.error({ err, path }, 'source file stat failed');
      return undefined;
    });
    const state = states.get(path);
    if (now === undefined || state === undefined || state.token !== token || closed) return;
    if (now.size !== seen.size || now.mtimeMs !== seen.mtimeMs || now.ino !== seen.ino) touch(path);
    else scheduleRecheck(path, state, token, seen, attempt + 1);
  }

  function accept(path: string, file: SourceFile): void {
    const sha = sha256Hex(file.bytes);
    if (sha === currentSha(path)) return;
    batch.set(path, { change: { path, content: file.bytes }, sha });
    queued.set(path, sha);
    scheduleFlush();
  }

  function remove(path: string): void {
    if (closed) return;
    retrying.delete(path);
    const state = states.get(path);
    if (state !== undefined) {
      state.token++;
      clearTimer(state);
      states.delete(path);
    }
    const pending = queued.get(path);
    const entry = publisher.getEntry(path);
    const published = pending !== undefined ? pending !== DELETED : entry?.origin === 'watch';
    if (!published) {
      batch.delete(path);
      checkIdle();
      return;
    }
    batch.set(path, { change: { path, deleted: true }, sha: DELETED });
    queued.set(path, DELETED);
    scheduleFlush();
  }

  function scheduleFlush(): void {
    if (flushScheduled || inFlight !== undefined) return;
    if (held && batch.size < maxBatchPaths) return;
    flushScheduled = true;
    setImmediate(flush);
  }

  function flush(): void {
    flushScheduled = false;
    if (batch.size === 0) {
      checkIdle();
      return;
    }
    const queuedChanges = [...batch.values()];
    const changes = queuedChanges.map((item) => item.change);
    batch.clear();
    const drained = drainWaiters;
    drainWaiters = [];
    for (const resolve of drained) resolve();
    const startedMs = Date.now();
    inFlight = publisher
      .submit(changes, 'watch')
      .then(
        ({ seq }) => {
          retryFailures = 0;
          log.info({ seq, paths: changes.length, durationMs: Date.now() - startedMs }, 'source changes published');
        },
        (err: unknown) => {
          for (const item of queuedChanges) if (!batch.has(item.change.path)) retrying.set(item.change.path, item);
          const retryInMs = scheduleRetry();
          log.error({ err, paths: changes.length, firstPath: changes[0]?.path, retryInMs }, 'source changes not published');
        },
      )
      .finally(() => {
        for (const { change, sha } of queuedChanges) if (queued.get(change.path) === sha) queued.delete(change.path);
        inFlight = undefined;
        if (batch.size > 0) scheduleFlush();
        checkIdle();
      });
  }

  /** Backoff 500 ms doubling to 30 s; returns the delay chosen. */
  function scheduleRetry(): number {
    const delayMs = Math.min(500 * 2 ** retryFailures++, 30_000);
    if (retryTimer !== undefined || closed) return delayMs;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      for (const [path, item] of retrying) if (!batch.has(path)) batch.set(path, item);
      retrying.clear();
      scheduleFlush();
    }, delayMs);
    retryTimer.unref?.();
    return delayMs;
  }

  return {
    touch,
    remove,
    idle: () => until(isIdle),
    settled: () => until(isSettled),
    hold() {
      held = true;
    },
    release() {
      held = false;
      scheduleFlush();
      checkIdle();
    },
    async close() {
      closed = true;
      held = false;
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      for (const state of states.values()) clearTimer(state);
      for (const resolve of drainWaiters) resolve();
      drainWaiters = [];
      reads.clear();
      await reads.onIdle();
      if (flushScheduled || batch.size > 0) flush();
      await inFlight;
      checkIdle();
    },
  };
}
