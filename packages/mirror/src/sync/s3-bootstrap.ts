import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import PQueue from 'p-queue';
import {
  S3_SIGNATURE_METADATA,
  S3_STATEMENT_METADATA,
  checkSnapshotHead,
  isMetasyncError,
  metasyncError,
  normalizeS3Prefix,
  parseS3SnapshotKey,
  s3ObjectKey,
  s3SnapshotsPrefix,
  sha256Hex,
  verifySnapshotBody,
  type ErrorCode,
  type PublicKeyInfo,
  type Snapshot,
} from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import { createS3Retrier, s3ErrorName, s3StatusOf, type S3Retrier, type S3RetryPolicy } from '@metasync/shared/s3';
import { parseSnapshotDocument } from './parse-document.js';

/**
 * Cold start of a new mirror from the primary's S3 bucket (layout in
 * shared/s3-layout.ts), so ten new mirrors do not each pull a full copy from
 * the primary:
 *
 *   newest snapshot key (one ListObjectsV2) -> GetObject -> verify signature
 *   (Ed25519, trusted keys) -> parse -> GetObject each object the store lacks
 *   (bounded concurrency) -> sha256 + size check -> hand verified bytes to the store
 *
 * It does not apply the snapshot: the caller hands `snapshot` to its normal
 * snapshot apply, which finds the objects present (and fetches from the
 * primary any listed in `refused`), then follows the primary with
 * `changes?since=snapshot.seq`. Bytes that fail their hash never reach the store.
 */
export interface S3BootstrapOptions {
  client: S3Client;
  bucket: string;
  prefix?: string | undefined;
  /** Keys the mirror trusts for snapshot signatures (its pinned primary keys). */
  trustedKeys: readonly PublicKeyInfo[];
  log: Logger;
  /** True when the store already holds the verified object (skips the download). */
  hasObject: (sha256: string) => Promise<boolean>;
  /** Receives only bytes whose sha256 and size were verified. */
  writeObject: (object: { sha256: string; raw: Buffer }) => Promise<void>;
  /** Called once after the last write (the store's directory fsync barrier). */
  flush?: (() => Promise<void>) | undefined;
  /** Concurrent object downloads; default 16. */
  concurrency?: number | undefined;
  /** Downloads per object before it is refused (a corrupt transfer may succeed on retry); default 2. */
  objectAttempts?: number | undefined;
  /** Largest snapshot body read; default 256 MiB (a 100k-path snapshot is ~15 MB). */
  maxSnapshotBytes?: number | undefined;
  /** Refuse a snapshot older than this (the mirror already applied a later generation). */
  minSeq?: number | undefined;
  retry?: S3RetryPolicy | undefined;
  nowMs?: (() => number) | undefined;
  sleep?: ((ms: number) => Promise<void>) | undefined;
  onProgress?: ((done: number, total: number) => void) | undefined;
}

export interface RefusedObject {
  sha256: string;
  key: string;
  code: ErrorCode;
}

export interface S3BootstrapResult {
  snapshot: Snapshot;
  /** The exact signed bytes and their signature, should the caller keep them. */
  body: Buffer;
  signature: string;
  key: string;
  objectsFetched: number;
  objectsPresent: number;
  bytesFetched: number;
  /** Objects missing from the bucket or failing verification: not written; fetch them from the primary. */
  refused: RefusedObject[];
  durationMs: number;
}

/** Resolves undefined when the bucket holds no snapshot under the prefix. */
export async function bootstrapFromS3(options: S3BootstrapOptions): Promise<S3BootstrapResult | undefined> {
  const started = performance.now();
  const { client, bucket, log } = options;
  const prefix = normalizeS3Prefix(options.prefix);
  const retrying = createS3Retrier({ bucket, log, policy: options.retry, sleep: options.sleep });

  const key = await newestSnapshotKey(client, bucket, prefix, retrying);
  if (key === undefined) {
    log.info({ bucket, prefix }, 's3 bucket holds no snapshot');
    return undefined;
  }
  const fetched = await retrying('GetObject', key.key, async () => {
    const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key.key }));
    const maxBytes = options.maxSnapshotBytes ?? 256 * 1024 * 1024;
    const body = await readBounded(answer.Body, maxBytes, () =>
      tooLarge(`snapshot s3://${bucket}/${key.key}`, key.key, '', maxBytes, maxBytes + 1),
    );
    return { body, signature: answer.Metadata?.[S3_SIGNATURE_METADATA], statement: answer.Metadata?.[S3_STATEMENT_METADATA] };
  });
  const what = `snapshot s3://${bucket}/${key.key}`;
  const verifyOptions = { keys: options.trustedKeys, nowMs: options.nowMs?.() ?? Date.now(), what };
  const stated = verifySnapshotBody(fetched.body, fetched, verifyOptions);
  const snapshot = await parseSnapshotDocument(fetched.body, what);
  checkSnapshotHead(snapshot, stated, what);
  if (snapshot.seq !== key.seq) {
    throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `${what} holds seq ${snapshot.seq}, but its key names seq ${key.seq}`, {
      bucket,
      key: key.key,
      seq: snapshot.seq,
    });
  }
  if (options.minSeq !== undefined && snapshot.seq < options.minSeq) {
    throw metasyncError('METASYNC_ERR_SYNC_ROLLBACK', `${what} is at seq ${snapshot.seq}, older than the applied seq ${options.minSeq}`, {
      bucket,
      key: key.key,
      seq: snapshot.seq,
      appliedSeq: options.minSeq,
    });
  }
  log.info({ bucket, key: key.key, seq: snapshot.seq, paths: snapshot.entries.length }, 's3 snapshot verified');

  const counts = await fetchObjects(options, prefix, snapshot, retrying);
  await options.flush?.();
  const durationMs = Math.round(performance.now() - started);
  log.info({ bucket, seq: snapshot.seq, ...counts, refused: counts.refused.length, durationMs }, 's3 bootstrap fetched objects');
  return { snapshot, body: fetched.body, signature: fetched.signature!, key: key.key, ...counts, durationMs };
}

async function newestSnapshotKey(
  client: S3Client,
  bucket: string,
  prefix: string,
  retrying: S3Retrier,
): Promise<{ key: string; seq: number } | undefined> {
  const folder = s3SnapshotsPrefix(prefix);
  let token: string | undefined;
  // Snapshot keys start with digits, so they sort before any stray key: the first page decides in practice.
  for (let page = 0; page < 1000; page++) {
    const answer = await retrying('ListObjectsV2', folder, () =>
      client.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: folder,
          MaxKeys: 10,
          ...(token === undefined ? {} : { ContinuationToken: token }),
        }),
      ),
    );
    for (const item of answer.Contents ?? []) {
      const seq = item.Key === undefined ? undefined : parseS3SnapshotKey(prefix, item.Key);
      if (seq !== undefined) return { key: item.Key!, seq };
    }
    if (answer.IsTruncated !== true || answer.NextContinuationToken === undefined) return undefined;
    token = answer.NextContinuationToken;
  }
  return undefined;
}

interface FetchCounts {
  objectsFetched: number;
  objectsPresent: number;
  bytesFetched: number;
  refused: RefusedObject[];
}

async function fetchObjects(options: S3BootstrapOptions, prefix: string, snapshot: Snapshot, retrying: S3Retrier): Promise<FetchCounts> {
  const sizes = new Map<string, number>();
  for (const entry of snapshot.entries) sizes.set(entry.sha256, entry.size);
  const queue = new PQueue({ concurrency: options.concurrency ?? 16 });
  const attempts = Math.max(1, options.objectAttempts ?? 2);
  const counts: FetchCounts = { objectsFetched: 0, objectsPresent: 0, bytesFetched: 0, refused: [] };
  let done = 0;

  async function fetchOne(sha256: string, size: number): Promise<void> {
    const key = s3ObjectKey(prefix, sha256);
    for (let attempt = 1; ; attempt++) {
      try {
        const raw = await download(options, key, sha256, size, retrying);
        await options.writeObject({ sha256, raw });
        counts.objectsFetched++;
        counts.bytesFetched += raw.byteLength;
        return;
      } catch (err) {
        const code = refusalCode(err);
        if (code === undefined) throw err;
        options.log.warn({ err, bucket: options.bucket, key, sha256, attempt }, 's3 object refused');
        if (code === 'METASYNC_ERR_OBJECT_NOT_FOUND' || attempt >= attempts) {
          counts.refused.push({ sha256, key, code });
          return;
        }
      }
    }
  }

  const tasks = [...sizes].map(([sha256, size]) =>
    queue.add(async () => {
      if (await options.hasObject(sha256)) counts.objectsPresent++;
      else await fetchOne(sha256, size);
      options.onProgress?.(++done, sizes.size);
    }),
  );
  const results = await Promise.allSettled(tasks);
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure !== undefined) throw failure.reason;
  return counts;
}

function refusalCode(err: unknown): ErrorCode | undefined {
  for (const code of ['METASYNC_ERR_OBJECT_HASH_MISMATCH', 'METASYNC_ERR_OBJECT_TOO_LARGE', 'METASYNC_ERR_OBJECT_NOT_FOUND'] as const) {
    if (isMetasyncError(err, code)) return code;
  }
  return undefined;
}

/** GetObject with its size and sha256 checked before anything is returned. */
async function download(options: S3BootstrapOptions, key: string, sha256: string, size: number, retrying: S3Retrier): Promise<Buffer> {
  const where = `s3://${options.bucket}/${key}`;
  const raw = await retrying('GetObject', key, async () => {
    let answer;
    try {
      answer = await options.client.send(new GetObjectCommand({ Bucket: options.bucket, Key: key }));
    } catch (err) {
      if (s3StatusOf(err) === 404 && s3ErrorName(err) !== 'NoSuchBucket') {
        throw metasyncError(
          'METASYNC_ERR_OBJECT_NOT_FOUND',
          `no object ${where} for sha256 ${sha256}`,
          { bucket: options.bucket, key, sha256 },
          err,
        );
      }
      throw err;
    }
    if (answer.ContentLength !== undefined && answer.ContentLength > size) {
      destroyBody(answer.Body);
      throw tooLarge(where, key, sha256, size, answer.ContentLength);
    }
    // Never trust the length header alone: stop reading one byte past the announced size.
    return readBounded(answer.Body, size, () => tooLarge(where, key, sha256, size, size + 1));
  }).catch((err: unknown) => {
    // withS3Retry wraps every failure; unwrap the refusals this function raised itself.
    const cause = (err as { cause?: unknown }).cause;
    throw refusalCode(cause) === undefined ? err : cause;
  });
  if (raw.byteLength > size) throw tooLarge(where, key, sha256, size, raw.byteLength);
  const actual = sha256Hex(raw);
  if (actual !== sha256) {
    throw metasyncError('METASYNC_ERR_OBJECT_HASH_MISMATCH', `${where} hashes to ${actual}, expected ${sha256}; not stored`, {
      bucket: options.bucket,
      key,
      expected: sha256,
      got: actual,
      bytes: raw.byteLength,
    });
  }
  return raw;
}

/** Reads an SDK response body (a Node Readable) into memory, refusing more than `maxBytes`. */
async function readBounded(body: unknown, maxBytes: number, onTooLarge: () => Error): Promise<Buffer> {
  if (body === undefined || body === null) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength;
    if (total > maxBytes) {
      destroyBody(body);
      throw onTooLarge();
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks, total);
}

function destroyBody(body: unknown): void {
  (body as { destroy?: () => void } | undefined)?.destroy?.();
}

function tooLarge(where: string, key: string, sha256: string, size: number, got: number): Error {
  return metasyncError('METASYNC_ERR_OBJECT_TOO_LARGE', `${where} is ${got} bytes, the snapshot announces ${size}; not stored`, {
    key,
    sha256,
    expected: size,
    got,
  });
}
