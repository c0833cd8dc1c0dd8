import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { SigningKey } from '@metasync/shared';
import { memoryAllocator, releaseMemory, type Logger } from '@metasync/shared/daemon';
import { BROTLI_OWED_FILE, createBrotliBackfill, openObjectStore, releasingAfterBackfill, type BrotliBackfill } from '@metasync/store';
import { lockDataDir } from './data-dir-lock.js';
import { openKeyRing, type KeyRing } from './keys/key-ring.js';
import { openJournal } from './journal/journal.js';
import { applyToManifest, createManifest, type Manifest } from './journal/manifest.js';
import { createObjectGc, type ObjectGc } from './store/gc.js';
import { createPublisher, DEFER_BROTLI_FROM_PATHS, type PrimaryPublisher, type PublisherOptions } from './publish/publisher.js';
import { deleteReservedPaths } from './publish/reserved-paths.js';
import { createSnapshotScheduler, type SnapshotScheduler } from './journal/snapshot-scheduler.js';
import { loadLatestSnapshot, removeSnapshotLeftovers } from './journal/snapshots.js';

/**
 * The primary's durable state, opened from its data dir:
 *
 *   <data>/primary.lock      one primary per data dir (pid)
 *   <data>/signing-key.pem   (only when no --signing-key-file, until the first key rotation)
 *   <data>/signing-keys.json (after a key rotation: the key set, keys/key-ring.ts)
 *   <data>/objects/          content-addressed store
 *   <data>/journal/          generation segments
 *   <data>/snapshots/        signed full manifests
 *   <data>/source-stat-cache with --source: the start-up stat cache (watch/stat-cache.ts)
 */
export interface PrimaryCoreOptions {
  dataDir: string;
  signingKeyFile: string | undefined;
  keepGenerations: number;
  /** Most entries the journal's kept generations hold in memory (journal.ts). */
  keepEntries?: number;
  snapshotEveryGenerations: number;
  snapshotIntervalMs: number;
  snapshotKeepFiles?: number;
  maxGenerationEntries?: number;
  segmentMaxBytes?: number;
  log: Logger;
  /** Passed to the publisher: the S3 durability barrier before each journal append. */
  beforeCommit?: PublisherOptions['beforeCommit'];
  /** The journal failed for good (see Journal.failure); the daemon exits so its supervisor restarts it. */
  onFatal?: PublisherOptions['onFatal'];
  /** --dists-url, passed to the publisher. */
  distsUrl?: string | undefined;
  /** Local object store GC (store/gc.ts); absent or intervalMs 0: objects are never deleted. */
  objectGc?: { graceMs: number; intervalMs: number };
}

export interface PrimaryCore {
  /** The active signing key (read it at each use: a rotation replaces it). */
  readonly key: SigningKey;
  keyRing: KeyRing;
  manifest: Manifest;
  publisher: PrimaryPublisher;
  snapshots: SnapshotScheduler;
  /** Undefined when the object GC is disabled. */
  objectGc: ObjectGc | undefined;
  /** Makes the brotli variants that bulk sources' puts deferred, after their commit (publisher.ts). */
  brotliBackfill: BrotliBackfill;
  /** Stops accepting submits, finishes queued commits, closes the journal. */
  close(): Promise<void>;
}

export async function openPrimaryCore(options: PrimaryCoreOptions): Promise<PrimaryCore> {
  await mkdir(options.dataDir, { recursive: true });
  const lock = await lockDataDir(options.dataDir);
  try {
    return await openLocked(options, lock);
  } catch (err) {
    await lock.release();
    throw err;
  }
}

/** A replay this long leaves enough garbage to be worth a full collection. */
const REPLAYED_RELEASE_FROM = 50;

async function openLocked(options: PrimaryCoreOptions, lock: { release(): Promise<void> }): Promise<PrimaryCore> {
  const { dataDir, log } = options;
  const keyRing = await openKeyRing({ keyFile: options.signingKeyFile, dataDir, log });
  const store = await openObjectStore({ dir: join(dataDir, 'objects'), keepFileThread: true });
  const snapshotDir = join(dataDir, 'snapshots');
  await removeSnapshotLeftovers(snapshotDir);
  const base = await loadLatestSnapshot(snapshotDir);
  const manifest: Manifest = base?.manifest ?? createManifest();
  const { journal, replayed } = await openJournal({
    dir: join(dataDir, 'journal'),
    keepGenerations: options.keepGenerations,
    ...(options.keepEntries === undefined ? {} : { keepEntries: options.keepEntries }),
    baseSeq: base?.seq ?? 0,
    baseTime: base?.time ?? 0,
    log,
    ...(options.segmentMaxBytes === undefined ? {} : { segmentMaxBytes: options.segmentMaxBytes }),
    onReplay(generation) {
      if (generation.seq > (base?.seq ?? 0)) applyToManifest(manifest, generation);
    },
  });
  log.info(
    {
      seq: journal.headSeq(),
      snapshotSeq: base?.seq ?? 0,
      replayed,
      paths: manifest.size,
      allocator: memoryAllocator(),
      nodeFlags: process.execArgv,
    },
    'journal replayed',
  );
  // The replay's segments and parses are garbage now: collected before the start-up reconcile allocates its own
  // (at 1M paths the restart's peak RSS was 976 MB without this).
  if (replayed >= REPLAYED_RELEASE_FROM) releaseMemory();
  const publisher = createPublisher({
    store,
    journal,
    manifest,
    log,
    ...(options.maxGenerationEntries === undefined ? {} : { maxGenerationEntries: options.maxGenerationEntries }),
    ...(options.beforeCommit === undefined ? {} : { beforeCommit: options.beforeCommit }),
    ...(options.onFatal === undefined ? {} : { onFatal: options.onFatal }),
    distsUrl: options.distsUrl,
  });
  const snapshots = createSnapshotScheduler({
    publisher,
    manifest,
    signingKey: () => keyRing.active(),
    dir: snapshotDir,
    initialSeq: base?.seq ?? 0,
    everyGenerations: options.snapshotEveryGenerations,
    intervalMs: options.snapshotIntervalMs,
    keepFiles: options.snapshotKeepFiles ?? 3,
    log,
  });
  // Its memory goes back once a large run is done: an idle primary otherwise keeps the run's garbage.
  const brotliBackfill = releasingAfterBackfill(
    createBrotliBackfill({
      store,
      pendingMarkerPath: join(dataDir, BROTLI_OWED_FILE),
      onError: (err) => log.warn({ err }, 'brotli variants not made'),
      onDropped: (dropped) =>
        log.info({ dropped }, 'brotli backfill queue full: these serve gzip until the sweep after the queue makes their variant'),
    }),
  );
  const stopBackfill = publisher.onCommit(({ generation }) => {
    // Only a generation this large can hold a deferring submit; objects stored whole are passed over by a stat.
    if (generation.entries.length < DEFER_BROTLI_FROM_PATHS) return;
    const deferred: string[] = [];
    for (const entry of generation.entries) if (!('deleted' in entry)) deferred.push(entry.sha256);
    brotliBackfill.add(deferred);
  });
  await deleteReservedPaths({ manifest, submit: publisher.submit, log });
  const gc = options.objectGc;
  const objectGc =
    gc === undefined || gc.intervalMs <= 0
      ? undefined
      : createObjectGc({ publisher, manifest, snapshotDir, graceMs: gc.graceMs, intervalMs: gc.intervalMs, log });
  objectGc?.start();
  return {
    get key() {
      return keyRing.active();
    },
    keyRing,
    manifest,
    publisher,
    snapshots,
    objectGc,
    brotliBackfill,
    async close() {
      await objectGc?.close();
      await publisher.close();
      stopBackfill();
      await brotliBackfill.close();
      await snapshots.close();
      await journal.close();
      await store.close();
      keyRing.close();
      await lock.release();
    },
  };
}
