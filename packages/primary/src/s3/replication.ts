import { isDeletion, type ChangeEntry } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import type { SignedSnapshot } from '../journal/snapshot-file.js';
import { LIST_INSTEAD_OF_HEAD, type ReadObject, type S3Sink } from './sink.js';

/**
 * Keeps the primary's S3 bucket in step with its local store:
 *
 *   commit of generation N:  store.sync -> beforeCommit: every new object durable in S3
 *                            -> journal append (only now can N be read or announced)
 *   every K generations / T ms, and at start: the signed head snapshot -> S3
 *                            (after its objects; uploads any the bucket lacks)
 *
 * The start-up upload is also the backfill when S3 is enabled on a primary
 * that already has content: the head snapshot names every live object.
 */
export interface SignedSnapshotSource {
  /** The signed snapshot of the head generation. */
  current(): Promise<SignedSnapshot>;
}

export interface S3ReplicationOptions {
  sink: S3Sink;
  readObject: ReadObject;
  snapshots: SignedSnapshotSource;
  /** Upload a snapshot once this many generations passed since the last one. */
  everyGenerations: number;
  /** ...or this long after a change, whichever comes first. */
  intervalMs: number;
  log: Logger;
  /** Longest close() waits for a snapshot upload in progress; default 5 s. */
  closeTimeoutMs?: number;
}

export interface S3Replication {
  /** The publisher's barrier: resolves once the generation's objects are durable in the bucket; rejects to abort the commit. */
  beforeCommit(generation: { seq: number; entries: readonly ChangeEntry[] }): Promise<void>;
  /** Called after each commit; schedules snapshot uploads. */
  committed(seq: number): void;
  /** Uploads the head snapshot now (single flight); resolves with its seq, or undefined when nothing is published yet. */
  uploadSnapshot(): Promise<number | undefined>;
  /** Starts the interval and the start-up upload (in the background; failures are logged and retried on the next tick). */
  start(): void;
  close(): Promise<void>;
  lastSnapshotSeq(): number;
}

export function createS3Replication(options: S3ReplicationOptions): S3Replication {
  const { sink, log } = options;
  let lastSeq = 0;
  let headSeq = 0;
  let running: Promise<number | undefined> | undefined;
  /** A trigger arrived during an upload: run once more after it, so the head is never left behind. */
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  async function beforeCommit(generation: { seq: number; entries: readonly ChangeEntry[] }): Promise<void> {
    const shas = generation.entries.filter((entry) => !isDeletion(entry)).map((entry) => (entry as { sha256: string }).sha256);
    if (shas.length === 0) return;
    const started = performance.now();
    // In slices the sink checks per object (HEAD, PUT): cost follows the generation, never a listing of
    // the whole bucket, and at most one slice of object bytes is read into memory at a time.
    let uploaded = 0;
    for (let i = 0; i < shas.length; i += LIST_INSTEAD_OF_HEAD) {
      uploaded += (await sink.awaitDurable(shas.slice(i, i + LIST_INSTEAD_OF_HEAD), options.readObject)).uploaded;
    }
    log.debug(
      { seq: generation.seq, objects: shas.length, uploaded, durationMs: Math.round(performance.now() - started) },
      's3 generation objects durable',
    );
  }

  async function upload(): Promise<number | undefined> {
    const snapshot = await options.snapshots.current();
    if (snapshot.seq === 0 || snapshot.seq <= lastSeq) return snapshot.seq === 0 ? undefined : lastSeq;
    // After the first upload of this process, every object a snapshot names is in the bucket already: the
    // first one's were checked, and each commit since waited for its own (beforeCommit).
    await sink.putSnapshot({ snapshot, readObject: options.readObject, objectsDurable: lastSeq > 0 });
    lastSeq = Math.max(lastSeq, snapshot.seq);
    return snapshot.seq;
  }

  function uploadSnapshot(): Promise<number | undefined> {
    running ??= upload().finally(() => {
      running = undefined;
    });
    return running;
  }

  function uploadInBackground(reason: string): void {
    if (closed) return;
    if (running !== undefined) {
      again = true;
      return;
    }
    uploadSnapshot()
      .catch((err: unknown) => log.error({ err, reason, bucket: sink.bucket }, 's3 snapshot upload failed'))
      .finally(() => {
        if (again) {
          again = false;
          uploadInBackground('coalesced');
        }
      });
  }

  return {
    beforeCommit,
    committed(seq) {
      headSeq = Math.max(headSeq, seq);
      if (seq - lastSeq >= options.everyGenerations) uploadInBackground('generations');
    },
    uploadSnapshot,
    start() {
      uploadInBackground('start');
      timer = setInterval(() => {
        if (headSeq > lastSeq || lastSeq === 0) uploadInBackground('interval');
      }, options.intervalMs);
      timer.unref();
    },
    async close() {
      closed = true;
      clearInterval(timer);
      // Generation barriers are awaited by the publisher, so only snapshot uploads can be in flight here.
      // A long backfill must not hold up shutdown: wait a bounded time, then leave it (a snapshot is
      // written only after its objects, so an abandoned upload leaves the bucket consistent).
      let timeout: NodeJS.Timeout | undefined;
      const waited = await Promise.race([
        Promise.all([running?.catch(() => undefined), sink.drain()]).then(() => true),
        new Promise<false>((resolve) => {
          timeout = setTimeout(() => resolve(false), options.closeTimeoutMs ?? 5_000);
          timeout.unref();
        }),
      ]);
      clearTimeout(timeout);
      if (!waited) log.warn({ bucket: sink.bucket, pending: sink.stats().pending }, 's3 uploads abandoned at shutdown');
    },
    lastSnapshotSeq: () => lastSeq,
  };
}
