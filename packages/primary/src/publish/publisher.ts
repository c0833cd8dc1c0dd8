import { assertRepoPath, metasyncError, sha256Hex } from '@metasync/shared';
import { releaseMemorySoon, type Logger } from '@metasync/shared/daemon';
import type { ObjectStore } from '@metasync/store';
import type { Journal } from '../journal/journal.js';
import type { JournalEntry, JournalGeneration, Origin } from '../journal/record.js';
import { applyToManifest, pathsWithOrigin, type Manifest, type ManifestEntry } from '../journal/manifest.js';
import { storedContentFor } from '../dists/dist-mirrors.js';
import { createReservedPathGate } from './reserved-paths.js';

export type { Origin } from '../journal/record.js';
export type { ManifestEntry } from '../journal/manifest.js';

/** New bytes or a deletion; `gzip` and `absent` (store.put's knownClean hint): what watch/prepare.ts made of `content`. */
export type SourceChange = { path: string; content: Buffer; gzip?: Buffer; absent?: boolean } | { path: string; deleted: true };

export interface Publisher {
  /** All `changes` land in ONE generation (never split; may be merged with concurrent submits).
   *  Resolves once that generation is durable (fsynced) and announced; returns its seq. Unchanged
   *  content (same sha256 at same path) is a no-op and resolves with the current seq.
   *  Paths are validated with assertRepoPath; an invalid one rejects the whole submit, nothing applied.
   *  So does content for a reserved path (a daemon route, METASYNC_ERR_PATH_RESERVED); deleting one is allowed. */
  submit(changes: readonly SourceChange[], origin: Origin): Promise<{ seq: number }>;
  /** True (logged and counted) when `path` belongs to a daemon route: a source must drop it before submitting. */
  refusesPath(path: string, origin: Origin): boolean;
  getEntry(path: string): ManifestEntry | undefined;
  entries(): IterableIterator<[string, ManifestEntry]>;
  /** The paths `origin` published: what a source walks to find its deletions (no entry built per path). */
  pathsFrom(origin: Origin): Iterable<string>;
  readObject(sha256: string): Promise<Buffer>;
  headSeq(): number;
  /**
   * The bytes submit() stores for `content` at `path` (the dist mirrors of --dists-url added to p2
   * files). A source that skips unchanged files compares this content's sha256 with the manifest's.
   */
  contentFor(path: string, content: Buffer): Buffer;
}

export interface CommitInfo {
  generation: JournalGeneration;
  /** Per submit in the generation: submit call to durable commit, ms. */
  submitLatenciesMs: number[];
}

export interface PrimaryPublisher extends Publisher {
  readonly journal: Journal;
  readonly store: ObjectStore;
  headTime(): number;
  /**
   * The generation getEntry() reflects: headSeq(), except while a commit is between its journal
   * append (which may await a segment rotation after moving the head) and its manifest update.
   * What vouches for an entry (a signed repository answer) names this seq, never a later one. manifestTime(): its commit time.
   */
  manifestSeq(): number;
  manifestTime(): number;
  /** Called synchronously after each generation is durable, before submits resolve. */
  onCommit(listener: (info: CommitInfo) => void): () => void;
  /** Called once per reserved path refused (by a source's check or by submit), with the refusing source. */
  onReservedRefused(listener: (origin: Origin) => void): () => void;
  /** Refuses new submits and waits for queued ones to commit. */
  close(): Promise<void>;
  /** True while a submit naming this object has not committed or failed yet (the object GC must keep it). */
  isPending(sha256: string): boolean;
}

export interface PublisherOptions {
  store: ObjectStore;
  journal: Journal;
  /** The head manifest (replayed); the publisher owns and mutates it. */
  manifest: Manifest;
  log: Logger;
  /** Cap on paths per generation; a single larger submit still commits whole. */
  maxGenerationEntries?: number;
  /**
   * Runs after the generation's objects are fsynced and before its journal
   * append, so nothing can read or announce the generation earlier (S3
   * durability). A rejection aborts the commit: its submits reject, the seq is not used.
   */
  beforeCommit?: (generation: JournalGeneration) => Promise<void>;
  /** Called once when the journal stops accepting appends (failed fsync): the process should restart. */
  onFatal?: (err: unknown) => void;
  /** --dists-url: every p2 file stored gets this dist mirror (dists/dist-mirrors.ts); undefined: stored as given. */
  distsUrl?: string | undefined;
  now?: () => number;
}

export const DEFAULT_MAX_GENERATION_ENTRIES = 5_000;

/**
 * From this many paths (an ingest, a burst, an upstream bootstrap) brotli is made after the commit (data-dir.ts
 * backfill): two thirds of the compression off the commit path. An edit keeps it at once, so no mirror compresses it.
 */
export const DEFER_BROTLI_FROM_PATHS = 100;

type PreparedChange = { path: string; sha256: string; size: number } | { path: string; deleted: true };

interface PendingSubmit {
  changes: PreparedChange[];
  origin: Origin;
  startedMs: number;
  resolve: (result: { seq: number }) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit:
 *
 *   submit -> validate -> store objects (fsynced) -> pending[] --pump--> one generation
 *                                                                        store.sync, journal append + fsync,
 *                                                                        manifest, listeners, resolve
 *
 * A lone submit finds the pump idle and commits at once (no timer). Submits
 * that arrive while a commit's fsync is in flight wait in `pending` and all go
 * into the next generation, up to `maxGenerationEntries` paths; a submit is
 * never split across generations.
 */
export function createPublisher(options: PublisherOptions): PrimaryPublisher {
  const { store, journal, manifest, log } = options;
  // The manifest comes replayed to the journal's head.
  let [manifestSeq, manifestTime] = [journal.headSeq(), journal.headTime()];
  const maxEntries = options.maxGenerationEntries ?? DEFAULT_MAX_GENERATION_ENTRIES;
  const now = options.now ?? Date.now;
  const listeners = new Set<(info: CommitInfo) => void>();
  const pending: PendingSubmit[] = [];
  const inFlight = new Set<Promise<unknown>>();
  let pumping: Promise<void> | undefined;
  let closed = false;
  let fatalReported = false;
  /** sha256 -> submits between their first hash and their commit (or failure) that name it. */
  const pendingObjects = new Map<string, number>();
  const reserved = createReservedPathGate(log);
  const { distsUrl } = options;

  // Here, not in each source: every source's p2 bytes pass through submit before they are hashed, stored and signed.
  function contentFor(path: string, content: Buffer): Buffer {
    return storedContentFor(path, content, distsUrl);
  }

  function pin(sha256: string): void {
    pendingObjects.set(sha256, (pendingObjects.get(sha256) ?? 0) + 1);
  }

  function unpin(sha256: string): void {
    const count = (pendingObjects.get(sha256) ?? 1) - 1;
    if (count === 0) pendingObjects.delete(sha256);
    else pendingObjects.set(sha256, count);
  }

  function submit(changes: readonly SourceChange[], origin: Origin): Promise<{ seq: number }> {
    if (closed) return Promise.reject(metasyncError('METASYNC_ERR_SYNC_UNREACHABLE', 'publisher is shutting down; submit refused'));
    const promise = ingestAndCommit(changes, origin);
    const settled = promise.catch(() => undefined);
    inFlight.add(settled);
    void settled.then(() => inFlight.delete(settled));
    return promise;
  }

  async function ingestAndCommit(changes: readonly SourceChange[], origin: Origin): Promise<{ seq: number }> {
    const startedMs = now();
    for (const change of changes) assertRepoPath(change.path);
    // The last gate: whatever built this submit, it cannot make a daemon route answer content.
    const refused = changes.filter((change) => !('deleted' in change) && reserved.refuses(change.path, origin));
    if (refused.length > 0) {
      const paths = refused.map((change) => change.path);
      throw metasyncError('METASYNC_ERR_PATH_RESERVED', `submit refused: ${paths.join(', ')} belong to the daemons' own routes`, { paths });
    }
    // Pinned synchronously, before the first await, until the commit put them in the manifest (or
    // failed): the object GC re-checks pins right before each unlink, so it never collects an
    // object a submit in progress will reference.
    const pinned: string[] = [];
    const deferBrotli = changes.length >= DEFER_BROTLI_FROM_PATHS;
    try {
      const prepared = await Promise.all(
        changes.map(async (change): Promise<PreparedChange> => {
          if ('deleted' in change) return { path: change.path, deleted: true };
          const content = contentFor(change.path, change.content);
          const sha256 = sha256Hex(content);
          pin(sha256);
          pinned.push(sha256);
          // Unchanged content (a reconcile, a rewrite of the same bytes) needs no store work: the
          // object is in the manifest, which the GC never collects from, and it is pinned until this commits.
          if (manifest.get(change.path)?.sha256 === sha256) return { path: change.path, sha256, size: content.length };
          // What a source prepared is of its own bytes: of no use once contentFor rewrote them.
          const prepared = content === change.content ? { gzip: change.gzip, knownClean: change.absent } : {};
          const stored = await store.put({ raw: content, sha256, deferBrotli, ...prepared });
          return { path: change.path, sha256: stored.sha256, size: stored.size };
        }),
      );
      return await new Promise<{ seq: number }>((resolve, reject) => {
        pending.push({ changes: prepared, origin, startedMs, resolve, reject });
        pump();
      });
    } finally {
      for (const sha256 of pinned) unpin(sha256);
    }
  }

  function pump(): void {
    if (pumping !== undefined) return;
    pumping = (async () => {
      while (pending.length > 0) {
        const batch = takeBatch();
        try {
          await commitBatch(batch);
        } catch (err) {
          log.error({ err, submits: batch.length }, 'generation commit failed');
          for (const item of batch) item.reject(err);
          const failure = journal.failure();
          if (failure !== undefined && !fatalReported) {
            fatalReported = true;
            options.onFatal?.(failure);
          }
        }
      }
    })().finally(() => {
      pumping = undefined;
      if (pending.length > 0) pump();
    });
  }

  function takeBatch(): PendingSubmit[] {
    const batch: PendingSubmit[] = [];
    let entries = 0;
    while (pending.length > 0) {
      const next = pending[0] as PendingSubmit;
      if (batch.length > 0 && entries + next.changes.length > maxEntries) break;
      batch.push(next);
      entries += next.changes.length;
      pending.shift();
    }
    return batch;
  }

  async function commitBatch(batch: PendingSubmit[]): Promise<void> {
    const merged = new Map<string, PreparedChange & { origin: Origin }>();
    for (const item of batch) for (const change of item.changes) merged.set(change.path, { ...change, origin: item.origin });
    const effective = [...merged.values()].filter((change) => {
      const current = manifest.get(change.path);
      return 'deleted' in change ? current !== undefined : current?.sha256 !== change.sha256;
    });
    if (effective.length === 0) {
      for (const item of batch) item.resolve({ seq: journal.headSeq() });
      return;
    }
    // Strictly increasing commit times: the Packagist feed's `since` cursor relies on it.
    const time = Math.max(now(), journal.headTime() + 1);
    const generation: JournalGeneration = {
      seq: journal.headSeq() + 1,
      time,
      entries: effective.map((change): JournalEntry => ({ ...change, mtime: time })),
    };
    await store.sync();
    await options.beforeCommit?.(generation);
    await journal.append(generation);
    applyToManifest(manifest, generation);
    manifestSeq = generation.seq;
    manifestTime = generation.time;
    // A large commit leaves its file bytes, parses and records behind as garbage that an idle primary would keep.
    if (generation.entries.length >= RELEASE_MEMORY_FROM_ENTRIES) releaseMemorySoon();
    const committedMs = now();
    const info: CommitInfo = { generation, submitLatenciesMs: batch.map((item) => committedMs - item.startedMs) };
    for (const listener of listeners) {
      try {
        listener(info);
      } catch (err) {
        log.error({ err, seq: generation.seq }, 'commit listener failed');
      }
    }
    log.debug({ seq: generation.seq, paths: generation.entries.length, submits: batch.length }, 'generation committed');
    for (const item of batch) item.resolve({ seq: generation.seq });
  }

  return {
    journal,
    store,
    submit,
    getEntry: (path) => manifest.get(path),
    entries: () => manifest.entries(),
    pathsFrom: (origin) => pathsWithOrigin(manifest, origin),
    readObject: (sha256) => store.read(sha256),
    headSeq: () => journal.headSeq(),
    contentFor,
    manifestSeq: () => manifestSeq,
    manifestTime: () => manifestTime,
    headTime: () => journal.headTime(),
    isPending: (sha256) => pendingObjects.has(sha256),
    onCommit(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    refusesPath: reserved.refuses,
    onReservedRefused: reserved.onRefused,
    async close() {
      closed = true;
      await Promise.all(inFlight);
    },
  };
}

/** Commits this large are worth a full collection once a run of them ends (memory-release.ts). */
const RELEASE_MEMORY_FROM_ENTRIES = 1_000;
