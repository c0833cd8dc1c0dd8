import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { SigningKey } from '@metasync/shared';
import { releaseMemorySoon, type Logger } from '@metasync/shared/daemon';
import type { Manifest } from './manifest.js';
import type { PrimaryPublisher } from '../publish/publisher.js';
import { keepAsReplayBase, makeGzipFile, retireLater, SERVED_DIR_NAME } from './snapshot-served.js';
import { signSnapshotOffThread } from './snapshot-signer.js';
import { pruneSnapshots, type SignedSnapshot } from './snapshots.js';

/**
 * Writes a signed snapshot file every `everyGenerations` commits, every
 * `intervalMs` when something changed, and on demand; then drops journal
 * segments the snapshot covers and that are older than the retention.
 * `current()` serves `GET /sync/v1/snapshot`: the head manifest, signed once
 * per head seq into a snapshot file (snapshot-served.ts), which is served from
 * disk (nothing of its ~150 MB at a million paths is held in memory).
 */

export interface SnapshotScheduler {
  /**
   * The signed snapshot of the head generation (cached per seq). With `maxAgeMs`, a cached
   * snapshot of an older seq built within that time is served instead, as long as the journal
   * still reaches back to it: the mirror continues with `changes?since=<its seq>`, and a busy
   * primary does not re-sign 100k paths for every bootstrapping mirror.
   */
  current(options?: { maxAgeMs?: number }): Promise<SignedSnapshot>;
  /** A file of `snapshot`'s body gzipped (level 6, streamed on the threadpool), made once per signed body. */
  gzipped(snapshot: SignedSnapshot): Promise<{ path: string; length: number }>;
  /** Writes a snapshot file of the head now (or keeps the served one, when it is of the head); concurrent calls share one write. */
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
}

export function createSnapshotScheduler(options: SnapshotSchedulerOptions): SnapshotScheduler {
  const { publisher, manifest, dir, log, signingKey } = options;
  const journal = publisher.journal;
  const servedDir = join(dir, SERVED_DIR_NAME);
  mkdirSync(servedDir, { recursive: true });
  let cached: SignedSnapshot | undefined;
  let cachedAtMs = 0;
  const gzips = new Map<string, Promise<{ path: string; length: number }>>();
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
   * the manifest is not frozen for it yet, or was frozen at the generation the manifest still reflects: every ask
   * gets a snapshot of the head at its call or later, as when signing was synchronous.
   */
  let signing: { keyId: string; frozen: { seq?: number }; snapshot: Promise<SignedSnapshot> } | undefined;
  function signHead(): Promise<SignedSnapshot> {
    const key = signingKey();
    const shareable = signing?.keyId === key.keyId && (signing.frozen.seq === undefined || signing.frozen.seq === publisher.manifestSeq());
    if (signing === undefined || !shareable) {
      const frozen: { seq?: number } = {};
      // Read when the manifest is frozen: the generation the manifest reflects then (the journal's head may be one
      // ahead while a commit awaits a segment rotation between its append and its manifest update).
      const head = (): { seq: number; time: number } => {
        frozen.seq = publisher.manifestSeq();
        return { seq: frozen.seq, time: publisher.manifestTime() };
      };
      const entry = { keyId: key.keyId, frozen, snapshot: signSnapshotOffThread({ manifest, key, head, dir: servedDir }) };
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
      adopt(snapshot);
      // Another ask cached a newer head while this one was signed: the newer is served.
      if (cached !== snapshot && reusable(options.maxAgeMs) === cached) snapshot = cached!;
    }
    return snapshot;
  }

  /** `snapshot` is served from now on, unless a newer one is; the file no longer served goes a while later. */
  function adopt(snapshot: SignedSnapshot): void {
    if (cached !== undefined && cached.seq > snapshot.seq) {
      if (snapshot.path !== cached.path) retireLater(snapshot);
      return;
    }
    // The same seq signed again (a key rotated in) is written over the same file: nothing to remove.
    if (cached !== undefined && cached.path !== snapshot.path) retireLater(cached);
    cached = snapshot;
    cachedAtMs = Date.now();
  }

  function gzipped(snapshot: SignedSnapshot): Promise<{ path: string; length: number }> {
    const key = `${snapshot.path}:${snapshot.sha256}`;
    let made = gzips.get(key);
    if (made === undefined) {
      made = makeGzipFile(snapshot);
      gzips.set(key, made);
      made.catch(() => gzips.delete(key));
    }
    // Only the newest body's gzip is remembered; an older one's file goes with it (retireLater).
    for (const other of gzips.keys()) if (other !== key) gzips.delete(other);
    return made;
  }

  /** A snapshot file of the head: the served one when it is of the head, else signed now; older files and the journal it covers go. */
  async function write(): Promise<{ seq: number; path: string }> {
    const snapshot = reusable() ?? (await signHead());
    adopt(snapshot);
    const startedMs = Date.now();
    const path = await keepAsReplayBase(snapshot, dir);
    lastSeq = Math.max(lastSeq, snapshot.seq);
    await pruneSnapshots(dir, options.keepFiles);
    const dropped = await journal.dropSegmentsCoveredBy(Math.min(snapshot.seq, journal.oldestSeq()));
    log.info(
      { seq: snapshot.seq, paths: manifest.size, bytes: snapshot.length, durationMs: Date.now() - startedMs, droppedSegments: dropped },
      'snapshot written',
    );
    releaseMemorySoon(); // the signing's sorted view and its waiting changes
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
    gzipped,
    take,
    lastSnapshotSeq: () => lastSeq,
    async close() {
      unsubscribe();
      clearInterval(timer);
      if (running !== undefined) await running.catch(() => undefined);
      if (signing !== undefined) await signing.snapshot.catch(() => undefined);
    },
  };
}
