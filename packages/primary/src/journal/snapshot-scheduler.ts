import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { SigningKey } from '@metasync/shared';
import { releaseMemorySoon, type Logger } from '@metasync/shared/daemon';
import type { Manifest } from './manifest.js';
import type { PrimaryPublisher } from '../publish/publisher.js';
import { pruneSnapshots, signSnapshot, writeSnapshotFile, type SignedSnapshot } from './snapshots.js';

/**
 * Writes a signed snapshot file every `everyGenerations` commits, every
 * `intervalMs` when something changed, and on demand; then drops journal
 * segments the snapshot covers and that are older than the retention.
 * `current()` serves `GET /sync/v1/snapshot`: the head manifest, signed once
 * per head seq and cached.
 */
const gzipAsync = promisify(gzip);

export interface SnapshotScheduler {
  /**
   * The signed snapshot of the head generation (cached per seq). With `maxAgeMs`, a cached
   * snapshot of an older seq built within that time is served instead, as long as the journal
   * still reaches back to it: the mirror continues with `changes?since=<its seq>`, and a busy
   * primary does not re-sign 100k paths for every bootstrapping mirror.
   */
  current(options?: { maxAgeMs?: number }): SignedSnapshot;
  /** `snapshot`'s body gzipped (level 6, off the event loop), once per signed snapshot. */
  gzipped(snapshot: SignedSnapshot): Promise<Buffer>;
  /** Writes a snapshot file of the head now; concurrent calls share one write. */
  take(): Promise<{ seq: number; path: string }>;
  lastSnapshotSeq(): number;
  close(): Promise<void>;
}

export interface SnapshotSchedulerOptions {
  publisher: PrimaryPublisher;
  manifest: Manifest;
  /** The active signing key at the time of signing (it changes when the key is rotated). */
  signingKey: () => SigningKey;
  dir: string;
  /** Seq of the snapshot replay started from. */
  initialSeq: number;
  everyGenerations: number;
  intervalMs: number;
  /** Snapshot files kept on disk. */
  keepFiles: number;
  log: Logger;
  /** How long a signed snapshot (and its gzip) is kept after it was last asked for. */
  keepSignedMs?: number;
}

export const DEFAULT_KEEP_SIGNED_MS = 60_000;

export function createSnapshotScheduler(options: SnapshotSchedulerOptions): SnapshotScheduler {
  const { publisher, manifest, dir, log, signingKey } = options;
  const journal = publisher.journal;
  let cached: SignedSnapshot | undefined;
  let cachedAtMs = 0;
  let gzipped: { of: SignedSnapshot; body: Promise<Buffer> } | undefined;
  /**
   * The signed body (~150 MB at a million paths) and its gzip are dropped once no mirror asked for
   * them for a while: bootstraps come in bursts, and the primary should not hold them in between.
   */
  let dropTimer: NodeJS.Timeout | undefined;
  function keepForAWhile(): void {
    clearTimeout(dropTimer);
    dropTimer = setTimeout(() => {
      cached = undefined;
      gzipped = undefined;
      releaseMemorySoon();
    }, options.keepSignedMs ?? DEFAULT_KEEP_SIGNED_MS);
    dropTimer.unref();
  }
  let lastSeq = options.initialSeq;
  let running: Promise<{ seq: number; path: string }> | undefined;

  function current(options: { maxAgeMs?: number } = {}): SignedSnapshot {
    const seq = journal.headSeq();
    const fresh = cached !== undefined && Date.now() - cachedAtMs <= (options.maxAgeMs ?? -1) && cached.seq >= journal.oldestSeq();
    // A snapshot signed by a key rotated out since is re-signed: after the overlap mirrors would refuse it.
    const key = signingKey();
    if ((cached?.seq !== seq && !fresh) || cached?.signature.startsWith(`${key.keyId}.`) !== true) {
      cached = signSnapshot({ seq, time: journal.headTime(), manifest, key });
      cachedAtMs = Date.now();
    }
    keepForAWhile();
    return cached as SignedSnapshot;
  }

  function gzippedBody(snapshot: SignedSnapshot): Promise<Buffer> {
    if (gzipped?.of !== snapshot) gzipped = { of: snapshot, body: gzipAsync(snapshot.body, { level: 6 }) };
    keepForAWhile();
    return gzipped.body;
  }

  async function write(): Promise<{ seq: number; path: string }> {
    const snapshot = current();
    const startedMs = Date.now();
    const path = await writeSnapshotFile({ dir, snapshot });
    lastSeq = Math.max(lastSeq, snapshot.seq);
    await pruneSnapshots(dir, options.keepFiles);
    const dropped = await journal.dropSegmentsCoveredBy(Math.min(snapshot.seq, journal.oldestSeq()));
    log.info(
      {
        seq: snapshot.seq,
        paths: manifest.size,
        bytes: snapshot.body.length,
        durationMs: Date.now() - startedMs,
        droppedSegments: dropped,
      },
      'snapshot written',
    );
    releaseMemorySoon(); // the sorted path list and the document built for it
    return { seq: snapshot.seq, path };
  }

  function take(): Promise<{ seq: number; path: string }> {
    running ??= write().finally(() => {
      running = undefined;
    });
    return running;
  }

  function takeInBackground(reason: string): void {
    take().catch((err: unknown) => log.error({ err, reason }, 'snapshot failed'));
  }

  const unsubscribe = publisher.onCommit(({ generation }) => {
    if (generation.seq - lastSeq >= options.everyGenerations && running === undefined) takeInBackground('generations');
  });
  const timer = setInterval(() => {
    if (journal.headSeq() > lastSeq && running === undefined) takeInBackground('interval');
  }, options.intervalMs);
  timer.unref();

  return {
    current,
    gzipped: gzippedBody,
    take,
    lastSnapshotSeq: () => lastSeq,
    async close() {
      unsubscribe();
      clearInterval(timer);
      clearTimeout(dropTimer);
      if (running !== undefined) await running.catch(() => undefined);
    },
  };
}
