import { Worker } from 'node:worker_threads';
import type { SigningKey } from '@metasync/shared';
import type { Manifest } from './manifest.js';
import type { FrozenManifest } from './manifest-freeze.js';
import type { ManifestTables } from './manifest-view.js';
import type { SignedSnapshot } from './snapshot-file.js';
import { signSnapshot } from './snapshots.js';

/** The request: the frozen tables, whose arrays are shared memory, so the thread reads them in place. */
export interface SignRequest {
  seq: number;
  time: number;
  tables: ManifestTables;
  key: SigningKey;
  /** Where the snapshot file is written (snapshot-file.ts). */
  dir: string;
}

/** The thread's answer: the snapshot file written and signed. */
export type SignAnswer = SignedSnapshot;

/**
 * A signing that takes longer is given up (its thread terminated): commits wait in memory beside the frozen
 * tables meanwhile. A million paths take 2-3 s.
 */
export const SIGNING_TIME_LIMIT_MS = 120_000;

/**
 * Signs the manifest on a thread of its own. At a million paths sorting, encoding and signing held the
 * event loop 1.8 s on an idle machine, and publishes waited up to 5 s behind it on a busy one
 * (publish-visible at 1M, 2026-12-07).
 *
 *   here:   once the thread is up, the manifest frozen and the head read, in one synchronous step
 *   thread: sorts the frozen tables' live ids and writes the snapshot file a chunk at a time, hashing it,
 *           then signs the statement of its hash, while this thread serves and commits (the commits wait
 *           beside the tables, manifest-freeze.ts)
 *   here:   the thread ended, the manifest thawed
 *
 * `head` is read at the freeze, so the snapshot is the manifest of that seq. A manifest without tables
 * (a Map, in tests) is signed here.
 */
export async function signSnapshotOffThread(options: {
  manifest: Manifest;
  key: SigningKey;
  head: () => { seq: number; time: number };
  dir: string;
  timeLimitMs?: number;
}): Promise<SignedSnapshot> {
  const { manifest, key, head, dir } = options;
  if (manifest.freeze === undefined) return signSnapshot({ ...head(), manifest, key, dir });
  const fromSources = import.meta.url.endsWith('.ts');
  const worker = new Worker(new URL(fromSources ? './snapshot-sign-worker.ts' : './snapshot-sign-worker.js', import.meta.url), {
    ...(fromSources ? { execArgv: ['--conditions=source', '--import', 'tsx'] } : {}),
  });
  const messages = workerMessages(worker);
  let frozen: FrozenManifest | undefined;
  const timeLimitMs = options.timeLimitMs ?? SIGNING_TIME_LIMIT_MS;
  let timedOut = false;
  let limit: NodeJS.Timeout | undefined;
  // The limit counts the thread's own work: its start, then its signing, not a wait for another's thaw.
  const startLimit = (): void => {
    limit = setTimeout(() => {
      timedOut = true;
      void worker.terminate();
    }, timeLimitMs);
  };
  try {
    startLimit();
    await messages.next(); // 'ready': the thread is up
    clearTimeout(limit);
    // A signing that overlaps another waits for its thaw: tables frozen now would miss the changes waiting.
    while (manifest.changesWaiting!()) await manifest.thawed!();
    startLimit();
    const at = head();
    frozen = manifest.freeze();
    const request: SignRequest = { ...at, tables: frozen.tables, key, dir };
    worker.postMessage(request);
    return (await messages.next()) as SignAnswer;
  } catch (err) {
    if (timedOut) throw new Error(`the snapshot signing thread took over ${timeLimitMs} ms and was stopped`, { cause: err });
    throw err;
  } finally {
    clearTimeout(limit);
    await worker.terminate();
    if (frozen !== undefined) thawOrCrash(frozen);
  }
}

/**
 * A thaw that could not apply a waiting change (each was checked when made, so only a failed allocation)
 * leaves the manifest short of what the journal committed: the process stops, loudly, and its restart
 * replays the journal. Thrown outside the signing, so no caller can take it for a failed signing.
 */
function thawOrCrash(frozen: FrozenManifest): void {
  try {
    frozen.thaw();
  } catch (err) {
    process.nextTick(() => {
      throw new Error(
        'the manifest could not take the changes committed while a snapshot was signed; a restart replays them from the journal',
        {
          cause: err,
        },
      );
    });
  }
}

/** The worker's messages in order; an error, or an exit before the next message, rejects. */
function workerMessages(worker: Worker): { next(): Promise<unknown> } {
  const queued: unknown[] = [];
  let waiting: { resolve(value: unknown): void; reject(err: unknown): void } | undefined;
  let failure: unknown;
  worker.on('message', (message: unknown) => {
    if (waiting === undefined) queued.push(message);
    else waiting.resolve(message);
    waiting = undefined;
  });
  const fail = (err: unknown): void => {
    failure ??= err;
    waiting?.reject(failure);
    waiting = undefined;
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`the snapshot signing thread exited (code ${code}) without an answer`)));
  return {
    next() {
      if (queued.length > 0) return Promise.resolve(queued.shift());
      if (failure !== undefined) return Promise.reject(failure);
      return new Promise((resolve, reject) => (waiting = { resolve, reject }));
    },
  };
}
