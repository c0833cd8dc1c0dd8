import type { S3Client } from '@aws-sdk/client-s3';
import PQueue from 'p-queue';
import {
  S3_SHA256_METADATA,
  S3_SIGNATURE_METADATA,
  S3_STATEMENT_METADATA,
  isSha256Hex,
  metasyncError,
  normalizeS3Prefix,
  s3ObjectKey,
  s3SnapshotKey,
  sha256Hex,
} from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import type { S3RetryPolicy } from '@metasync/shared/s3';
import { createBucket } from './bucket.js';
import { bodyStreams, withUploadLink } from './snapshot-upload-file.js';
import { decodeSnapshotBody } from '../journal/snapshot-body.js';
import type { SignedSnapshot } from '../journal/snapshot-file.js';
import { readSnapshotBody } from '../journal/snapshots.js';

/**
 * Write-through of the primary's objects and snapshots to S3 (layout in
 * shared/s3-layout.ts). Objects are immutable keys by hash: the sink never
 * overwrites one. It checks with HeadObject first (fauxqs and many
 * S3-compatible servers ignore conditional writes) and also sends
 * `If-None-Match: *`, so on AWS even a racing writer cannot replace a key.
 *
 * The publisher's rule "announce a generation only once its objects are
 * durable where configured" is `await sink.awaitDurable(shas)` (or awaiting
 * each `putObject`) before the announcement.
 */
export interface S3SinkOptions {
  client: S3Client;
  bucket: string;
  /** Key prefix; normalized to `''` or `a/b/`. */
  prefix?: string | undefined;
  log: Logger;
  /** Concurrent S3 calls; default 16. */
  concurrency?: number;
  retry?: S3RetryPolicy;
  /**
   * Trust the server to enforce `If-None-Match: *` (AWS S3 since 2024, MinIO) and skip
   * the HeadObject before each upload: one round trip per new object instead of two.
   * Off by default: servers that ignore the header (fauxqs, older ones) would overwrite.
   */
  conditionalWrites?: boolean;
  /** Sends `x-amz-checksum-sha256` so AWS verifies each upload; off for servers that refuse the header. Default true. */
  uploadChecksum?: boolean;
  /** How many durable shas the sink remembers to skip repeat HEADs; default 200 000 (~20 MB). */
  rememberMax?: number;
  /** Above this many unchecked shas, awaitDurable lists the objects folder instead of a HEAD each; default LIST_INSTEAD_OF_HEAD. */
  listThreshold?: number;
  /** Injected for tests (retry backoff). */
  sleep?: (ms: number) => Promise<void>;
}

export type PutObjectOutcome = 'stored' | 'existed';

/** Reads an object's bytes from the local store, for uploading objects the bucket lacks. */
export type ReadObject = (sha256: string) => Promise<Uint8Array>;

export interface PutSnapshotOptions {
  /** The signed snapshot file; its body is uploaded with its statement and signature as metadata. */
  snapshot: SignedSnapshot;
  /** Uploads objects the snapshot names that the bucket lacks (S3 enabled on an existing primary). */
  readObject?: ReadObject | undefined;
  /**
   * Every object the snapshot names is known to be in the bucket (an earlier snapshot's objects were, and
   * each commit since made its own durable first, replication.ts): none is checked, and the body is
   * streamed from disk rather than read whole.
   */
  objectsDurable?: boolean;
}

export interface PutSnapshotResult {
  key: string;
  /** False when the snapshot key already existed (same seq, same content by invariant 7). */
  created: boolean;
  objectsUploaded: number;
}

export interface S3SinkStats {
  stored: number;
  existed: number;
  failed: number;
  pending: number;
}

export interface S3Sink {
  readonly bucket: string;
  readonly prefix: string;
  /** Uploads unless the key exists; resolves once durable in the bucket. Concurrent calls for one sha share one upload. */
  putObject(sha256: string, bytes: Uint8Array): Promise<PutObjectOutcome>;
  /**
   * Resolves once every sha is durable in the bucket: awaits uploads in flight,
   * checks shas the sink has not seen, and uploads missing ones via `readObject`.
   * Rejects with the upload's error, or METASYNC_ERR_OBJECT_NOT_FOUND naming the key.
   */
  awaitDurable(shas: Iterable<string>, readObject?: ReadObject): Promise<{ uploaded: number }>;
  /** Makes the snapshot's objects durable, then writes the snapshot with its signature. */
  putSnapshot(options: PutSnapshotOptions): Promise<PutSnapshotResult>;
  stats(): S3SinkStats;
  /** Waits for every queued call to finish. */
  drain(): Promise<void>;
}

/** Above this many unknown shas, one listing of the objects folder beats a HEAD each. */
export const LIST_INSTEAD_OF_HEAD = 256;

export function createS3Sink(options: S3SinkOptions): S3Sink {
  const { client, bucket, log } = options;
  const prefix = normalizeS3Prefix(options.prefix);
  const queue = new PQueue({ concurrency: options.concurrency ?? 16 });
  const rememberMax = options.rememberMax ?? 200_000;
  const listThreshold = options.listThreshold ?? LIST_INSTEAD_OF_HEAD;
  const durable = new Set<string>();
  const inFlight = new Map<string, Promise<PutObjectOutcome>>();
  const counts = { stored: 0, existed: 0, failed: 0 };
  const { exists, putIfAbsent, listObjectShas } = createBucket({ client, bucket, prefix, log, retry: options.retry, sleep: options.sleep });

  function remember(sha256: string): void {
    durable.add(sha256);
    if (durable.size > rememberMax) {
      const oldest = durable.values().next();
      if (oldest.done !== true) durable.delete(oldest.value);
    }
  }

  async function upload(sha256: string, bytes: Uint8Array): Promise<PutObjectOutcome> {
    const key = s3ObjectKey(prefix, sha256);
    if (options.conditionalWrites !== true && (await exists(key))) return 'existed';
    const created = await putIfAbsent(key, {
      Body: bytes,
      ContentLength: bytes.byteLength,
      ContentType: 'application/octet-stream',
      CacheControl: 'public, max-age=31536000, immutable',
      Metadata: { [S3_SHA256_METADATA]: sha256 },
      ...(options.uploadChecksum === false ? {} : { ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64') }),
    });
    return created ? 'stored' : 'existed';
  }

  function putObject(sha256: string, bytes: Uint8Array): Promise<PutObjectOutcome> {
    if (!isSha256Hex(sha256)) return Promise.reject(new TypeError(`expected a lowercase sha256 hex digest, got ${JSON.stringify(sha256)}`));
    if (durable.has(sha256)) {
      counts.existed++;
      return Promise.resolve('existed');
    }
    const pending = inFlight.get(sha256);
    if (pending !== undefined) return pending;
    const actual = sha256Hex(bytes);
    if (actual !== sha256) {
      return Promise.reject(
        metasyncError(
          'METASYNC_ERR_OBJECT_HASH_MISMATCH',
          `refusing to upload to s3://${bucket}/${s3ObjectKey(prefix, sha256)}: the bytes hash to ${actual}`,
          {
            bucket,
            key: s3ObjectKey(prefix, sha256),
            expected: sha256,
            got: actual,
          },
        ),
      );
    }
    const started = performance.now();
    const task = queue
      .add(() => upload(sha256, bytes))
      .then(
        (outcome) => {
          counts[outcome]++;
          remember(sha256);
          log.debug({ sha256, outcome, bytes: bytes.byteLength, durationMs: Math.round(performance.now() - started) }, 's3 object durable');
          return outcome;
        },
        (err: unknown) => {
          counts.failed++;
          log.error({ err, sha256, bucket }, 's3 object upload failed');
          throw err;
        },
      )
      .finally(() => inFlight.delete(sha256));
    inFlight.set(sha256, task);
    return task;
  }

  async function awaitDurable(shas: Iterable<string>, readObject?: ReadObject): Promise<{ uploaded: number }> {
    const unique = new Set(shas);
    const waits: Promise<unknown>[] = [];
    const unknown: string[] = [];
    for (const sha of unique) {
      if (durable.has(sha)) continue;
      const pending = inFlight.get(sha);
      if (pending !== undefined) waits.push(pending);
      else unknown.push(sha);
    }
    await Promise.all(waits);
    if (unknown.length === 0) return { uploaded: 0 };
    if (readObject !== undefined && unknown.length <= listThreshold) {
      // A few objects with their bytes at hand (a new generation): putObject checks and uploads each in one pass.
      const outcomes = await Promise.all(unknown.map(async (sha) => putObject(sha, await readObject(sha))));
      return { uploaded: outcomes.filter((outcome) => outcome === 'stored').length };
    }
    let missing: string[];
    if (unknown.length > listThreshold) {
      const listed = await listObjectShas();
      missing = unknown.filter((sha) => !listed.has(sha));
    } else {
      const present = await Promise.all(unknown.map((sha) => queue.add(() => exists(s3ObjectKey(prefix, sha)))));
      missing = unknown.filter((_, i) => present[i] !== true);
    }
    const missingSet = new Set(missing);
    for (const sha of unknown) if (!missingSet.has(sha)) remember(sha);
    if (missing.length === 0) return { uploaded: 0 };
    if (readObject === undefined) {
      const key = s3ObjectKey(prefix, missing[0]!);
      throw metasyncError(
        'METASYNC_ERR_OBJECT_NOT_FOUND',
        `${missing.length} object(s) are not in the bucket, e.g. s3://${bucket}/${key}`,
        {
          bucket,
          key,
          missing: missing.length,
        },
      );
    }
    log.info({ bucket, prefix, missing: missing.length }, 's3 uploading objects the bucket lacks');
    const outcomes = await Promise.all(missing.map(async (sha) => putObject(sha, await readObject(sha))));
    return { uploaded: outcomes.filter((outcome) => outcome === 'stored').length };
  }

  async function putSnapshot(snapshotOptions: PutSnapshotOptions): Promise<PutSnapshotResult> {
    return withUploadLink(snapshotOptions.snapshot, (linked) => putSnapshotFrom(linked, snapshotOptions));
  }

  async function putSnapshotFrom(snapshot: SignedSnapshot, snapshotOptions: PutSnapshotOptions): Promise<PutSnapshotResult> {
    const { seq, signature, statement, length } = snapshot;
    let paths = 0;
    let uploaded = 0;
    if (snapshotOptions.objectsDurable !== true) {
      // Every hash checked: at a million paths the body (~150 MB) and an array of every hash are held meanwhile,
      // once per start of the primary (the bucket must hold each object before a snapshot names it).
      const shas: string[] = [];
      const head = decodeSnapshotBody(await readSnapshotBody(snapshot), (entry) => shas.push(entry.sha256));
      if (head.seq !== seq) throw new TypeError(`snapshot body is for seq ${head.seq}, not ${seq}`);
      paths = shas.length;
      uploaded = (await awaitDurable(shas, snapshotOptions.readObject)).uploaded;
    }
    const key = s3SnapshotKey(prefix, seq);
    const bodies = bodyStreams(snapshot);
    let created: boolean;
    try {
      // HEAD first even with conditional writes: a snapshot already there (the head after a restart) is common,
      // and a streamed PUT refused with 412 costs the SDK a warning on stderr.
      created = await queue.add(
        async () =>
          !(await exists(key)) &&
          (await putIfAbsent(key, () => ({
            Body: bodies.open(),
            ContentLength: length,
            ContentType: 'application/json',
            Metadata: { [S3_SIGNATURE_METADATA]: signature, [S3_STATEMENT_METADATA]: statement },
            ...(options.uploadChecksum === false ? {} : { ChecksumSHA256: Buffer.from(snapshot.sha256, 'hex').toString('base64') }),
          }))),
      );
    } finally {
      bodies.destroyAll();
    }
    log.info(
      { bucket, key, seq, paths, objectsChecked: snapshotOptions.objectsDurable !== true, objectsUploaded: uploaded, created },
      's3 snapshot durable',
    );
    return { key, created, objectsUploaded: uploaded };
  }

  return {
    bucket,
    prefix,
    putObject,
    awaitDurable,
    putSnapshot,
    stats: () => ({ ...counts, pending: inFlight.size }),
    drain: () => queue.onIdle(),
  };
}
