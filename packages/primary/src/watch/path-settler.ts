/**
 * Decides when a file under --source is complete (a half-written file is never
 * published), one small state machine per path:
 *
 * - `*.json`: as soon as its bytes parse as JSON. An atomic writer (temp file +
 *   rename) is read once and published at once, with no added delay; a writer
 *   that writes in place over several syscalls leaves JSON that does not parse
 *   until the last byte lands, so we wait for the next event, re-reading with a
 *   short backoff in case that event was coalesced away. JSON that still does
 *   not parse `jsonSettleMs` after the last event is refused (logged), and the
 *   previously published version stays.
 * - any other file: when it has had no event for `stabilityWindowMs`.
 * - after an event-driven read, a stat 20 ms and 150 ms later catches a write
 *   whose event was lost or merged: inotify merges identical unread events and
 *   drops events when its queue overflows, and a directory event's lstat can
 *   race a rename-over (tree-events.ts), so no event is trusted to be the last.
 *
 *   touch(path) -> [timer] -> waitForRoom -> read (p-queue; prepare.ts) -> judgeRead -> complete: onComplete(path, file, stored)
 *                                                                 \-> not yet: read again after a backoff
 *
 * Each event gives the path a new token; a read or timer of an older token is dropped.
 * A path's state lives only while something is pending for it: once it is
 * published (and rechecked), refused or gone, the state is dropped, so a tree of
 * a million settled files holds no per-file object here. Tokens come from one
 * counter for all paths, so a state created anew never reuses a token that a
 * read still in flight for an earlier state could carry.
 */
import { metasyncError } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import PQueue from 'p-queue';
import { judgeRead, type JsonWait } from './content.js';
import { sameFile, type FileIdentity, type SourceFile } from './paths.js';
import type { PreparedRead, StoredContent } from './prepare.js';

export interface PathSettlerOptions {
  log: Logger;
  /** Reads and prepares the file (prepare.ts): its checks, hash and gzip done. */
  read(path: string): Promise<PreparedRead>;
  stat(path: string): Promise<FileIdentity | undefined>;
  stabilityWindowMs: number;
  jsonSettleMs: number;
  /** Delays after an event-driven read at which the file is stat'ed again for a lost event. */
  recheckDelaysMs: readonly number[];
  readConcurrency: number;
  /** Backpressure from whoever takes the complete files: a promise to await before reading, or undefined to read at once. */
  waitForRoom(): Promise<void> | undefined;
  /** Called at the start of every touch, including one a recheck makes. */
  onTouch(path: string): void;
  onComplete(path: string, file: SourceFile, stored: StoredContent): void;
  /** A read or timer finished: whatever `isSettled()` answers may have changed. */
  onProgress(): void;
}

export interface PathSettler {
  /** A file was created or changed. */
  touch(path: string, options?: { recheck?: boolean }): void;
  /** A file was removed: drops its timers and pending reads. */
  forget(path: string): void;
  /** No read queued or running, and no timer that leads to a read. */
  isSettled(): boolean;
  /** Whether `path` has a read, wait or recheck pending, or was refused and not touched or forgotten since. */
  tracks(path: string): boolean;
  /** Paths with something pending (a read queued or running, a wait, a recheck): what a walk's touches cost in memory. */
  pendingPaths(): number;
  /** Stops timers, drops queued reads and waits for the ones already started. */
  close(): Promise<void>;
}

interface PathState {
  token: number;
  timer: NodeJS.Timeout | undefined;
  /** Waiting for a timer that leads to a read (counts as busy). */
  waiting: boolean;
  json: JsonWait;
  /** Whether the read for the current token came from an event (the reconcile walk needs no recheck). */
  recheck: boolean;
}

export function createPathSettler(options: PathSettlerOptions): PathSettler {
  const { log } = options;
  const reads = new PQueue({ concurrency: options.readConcurrency });
  const states = new Map<string, PathState>();
  /** Refused paths (few: broken files), so a reconcile walk does not re-read them until they change. */
  const refused = new Set<string>();
  let lastToken = 0;
  let waitingTimers = 0;
  let closed = false;

  function stateOf(path: string): PathState {
    let state = states.get(path);
    if (state === undefined) {
      state = { token: 0, timer: undefined, waiting: false, json: { failSinceMs: undefined, attempts: 0 }, recheck: true };
      states.set(path, state);
    }
    return state;
  }

  /** Drops the state of a path whose current token has nothing left pending. */
  function release(path: string, state: PathState, token: number): void {
    if (states.get(path) === state && state.token === token && state.timer === undefined) states.delete(path);
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
      options.onProgress();
    }, delayMs);
    state.timer.unref?.();
  }

  function touch(path: string, touchOptions: { recheck?: boolean } = {}): void {
    if (closed) return;
    options.onTouch(path);
    refused.delete(path);
    const state = stateOf(path);
    state.token = ++lastToken;
    state.recheck = touchOptions.recheck ?? true;
    state.json = { failSinceMs: undefined, attempts: 0 };
    const token = state.token;
    if (path.endsWith('.json')) {
      clearTimer(state);
      enqueueRead(path, token);
    } else {
      wait(state, options.stabilityWindowMs, () => enqueueRead(path, token), true);
    }
  }

  function enqueueRead(path: string, token: number): void {
    void reads
      .add(async () => {
        const full = options.waitForRoom();
        if (full !== undefined) await full;
        const state = states.get(path);
        if (closed || state === undefined || state.token !== token) return;
        let result: PreparedRead;
        try {
          result = await options.read(path);
        } catch (err) {
          log.error({ err, path }, 'source file read failed');
          release(path, state, token);
          return;
        }
        if (state.token !== token) return; // a newer event owns this path now
        handleRead(path, state, token, result);
      })
      .finally(options.onProgress);
  }

  function handleRead(path: string, state: PathState, token: number, result: PreparedRead): void {
    const judged = judgeRead({ result, wait: state.json, nowMs: Date.now(), jsonSettleMs: options.jsonSettleMs });
    state.json = judged.wait;
    const { verdict } = judged;
    if (verdict.kind === 'none') {
      release(path, state, token);
      return;
    }
    if (verdict.kind === 'refuse') {
      refused.add(path);
      release(path, state, token);
      const err = metasyncError('METASYNC_ERR_SOURCE_REFUSED', `source file ${path} refused: ${verdict.reason}`, {
        path,
        reason: verdict.reason,
      });
      log.error({ err, path, reason: verdict.reason }, 'source file refused');
      return;
    }
    if (verdict.kind === 'retry') {
      wait(state, verdict.delayMs, () => enqueueRead(path, token), true);
      return;
    }
    options.onComplete(path, verdict.file, verdict.stored);
    if (state.recheck) scheduleRecheck(path, state, token, verdict.file, 0);
    else release(path, state, token);
  }

  function scheduleRecheck(path: string, state: PathState, token: number, seen: SourceFile, attempt: number): void {
    const delayMs = options.recheckDelaysMs[attempt];
    if (delayMs === undefined) {
      release(path, state, token);
      return;
    }
    const sincePrevious = delayMs - (options.recheckDelaysMs[attempt - 1] ?? 0);
    wait(state, sincePrevious, () => void recheck(path, token, seen, attempt), false);
  }

  async function recheck(path: string, token: number, seen: SourceFile, attempt: number): Promise<void> {
    const now = await options.stat(path).catch((err: unknown) => {
      log.error({ err, path }, 'source file stat failed');
      return undefined;
    });
    const state = states.get(path);
    if (state === undefined || state.token !== token || closed) return;
    if (now === undefined) {
      release(path, state, token);
      return;
    }
    if (!sameFile(now, seen)) touch(path);
    else scheduleRecheck(path, state, token, seen, attempt + 1);
  }

  return {
    touch,
    forget(path) {
      refused.delete(path);
      const state = states.get(path);
      if (state === undefined) return;
      state.token = ++lastToken;
      clearTimer(state);
      states.delete(path);
    },
    isSettled: () => waitingTimers === 0 && reads.size === 0 && reads.pending === 0,
    tracks: (path) => states.has(path) || refused.has(path),
    pendingPaths: () => states.size,
    async close() {
      closed = true;
      for (const state of states.values()) clearTimer(state);
      reads.clear();
      await reads.onIdle();
    },
  };
}
