import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { SigningKey } from '@metasync/shared';
import { releaseMemorySoon, type Logger } from '@metasync/shared/daemon';
import type { Manifest } from './manifest.js';
import type { PrimaryPublisher } from '../publish/publisher.js';
import { signSnapshotOffThread } from './snapshot-signer.js';
import { pruneSnapshots, writeSnapshotFile, type SignedSnapshot } from './snapshots.js';

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
  current(options?: { maxAgeMs?: number }): Promise<SignedSnapshot>;
  /** `snapshot`'s body gzipped (level 6, off the event loop), once per signed snapshot. */
  gzipped(snapshot: SignedSnapshot): Promise<Buffer>;
  /** Writes a snapshot file of the head now; concurrent calls share one write. */
  take(): Promise<{ seq: number; path: string }>;
  /** Bytes of signed body (and its gzip, once made) held for `GET /sync/v1/snapshot`. */
  heldBytes(): number;
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
  let gzipped: { of: SignedSnapshot; body: Promise<Buffer>; bytes: number } | undefined;
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

  /** The cached snapshot if it may be served for the head now (`maxAgeMs`: see current()), else undefined. */
  function reusable(maxAgeMs = -1): SignedSnapshot | undefined {
    const fresh = cached !== undefined && Date.now() - cachedAtMs <= maxAgeMs && cached.seq >= journal.oldestSeq();
    // A snapshot signed by a key rotated out since is re-signed: after the overlap mirrors would refuse it.
    const signedByActiveKey = cached?.signature.startsWith(`${signingKey().keyId}.`) === true;
    return (cached?.seq === journal.headSeq() || fresh) && signedByActiveKey ? cached : undefined;
  }

  /**
   * The head signed on another thread (snapshot-signer.ts). An ask while one is being signed shares it when
   * its tables are not copied yet, or were copied at the generation the manifest still reflects: every ask
   * gets a snapshot of the head at its call or later, as when signing was synchronous.
   */
  let signing: { keyId: string; copied: { seq?: number }; snapshot: Promise<SignedSnapshot> } | undefined;
  function signHead(): Promise<SignedSnapshot> {
    const key = signingKey();
    const shareable = signing?.keyId === key.keyId && (signing.copied.seq === undefined || signing.copied.seq === publisher.manifestSeq());
    if (signing === undefined || !shareable) {
      const copied: { seq?: number } = {};
      // Read when the tables are copied: the generation the manifest reflects then (the journal's head may be one
      // ahead while a commit awaits a segment rotation between its append and its manifest update).
      const head = (): { seq: number; time: number } => {
        copied.seq = publisher.manifestSeq();
        return { seq: copied.seq, time: publisher.manifestTime() };
      };
      const entry = { keyId: key.keyId, copied, snapshot: signSnapshotOffThread({ manifest, key, head }) };
      signing = entry;
      const forget = (): void => {
        if (signing === entry) signing = undefined;
      };
      entry.snapshot.then(forget, forget);
      return entry.snapshot;
    }
    return signing.snapshot;
  }

  /** Signings of the head, again while the journal has moved past what one covers (a mirror could not continue from it). */
  async function signAnswerable(): Promise<SignedSnapshot> {
    let snapshot = await signHead();
    for (let attempt = 0; attempt < 3 && snapshot.seq < journal.oldestSeq(); attempt++) snapshot = await signHead();
    return snapshot;
  }

  async function current(options: { maxAgeMs?: number } = {}): Promise<SignedSnapshot> {
    let snapshot = reusable(options.maxAgeMs);
    if (snapshot === undefined) {
      snapshot = await signAnswerable();
      if (cached !== undefined && cached.seq > snapshot.seq && reusable(options.maxAgeMs) === cached) {
        // Another ask cached a newer head while this one was signed: the newer is served and stays.
        snapshot = cached;
      } else {
        cached = snapshot;
        cachedAtMs = Date.now();
        // The gzip of the snapshot replaced goes with it (~25 MB at a million paths), and heldBytes stays whole.
        if (gzipped !== undefined && gzipped.of !== snapshot) gzipped = undefined;
      }
    }
    keepForAWhile();
    return snapshot;
  }

  function gzippedBody(snapshot: SignedSnapshot): Promise<Buffer> {
    if (gzipped?.of !== snapshot) {
      const entry = { of: snapshot, body: gzipAsync(snapshot.body, { level: 6 }), bytes: 0 };
      entry.body.then((body) => (entry.bytes = body.length)).catch(() => undefined);
      gzipped = entry;
    }
    keepForAWhile();
    return gzipped.body;
  }

  async function write(): Promise<{ seq: number; path: string }> {
    // A file write alone does not keep the body (~150 MB at a million paths) for mirrors that may never ask:
    // a snapshot a mirror asked for is reused, any other is signed for the file and then let go.
    const snapshot = reusable() ?? (await signHead());
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
    heldBytes: () => (cached?.body.length ?? 0) + (gzipped?.bytes ?? 0),
    lastSnapshotSeq: () => lastSeq,
    async close() {
      unsubscribe();
      clearInterval(timer);
      clearTimeout(dropTimer);
      if (running !== undefined) await running.catch(() => undefined);
      if (signing !== undefined) await signing.snapshot.catch(() => undefined);
    },
  };
}
