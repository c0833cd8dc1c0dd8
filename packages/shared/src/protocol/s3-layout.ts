/**
 * The S3 bucket layout the primary writes and new mirrors bootstrap from.
 * Both sides build keys only through this file, so the layout is one contract:
 *
 *   <prefix>objects/<2 hex>/<62 hex>           immutable object bytes, key = sha256 of the bytes
 *   <prefix>snapshots/<newest-first>-<seq>.json a signed Snapshot body (exact bytes the primary signed)
 *
 * The snapshot's signature travels in the same PUT as user metadata
 * (`x-amz-meta-metasync-signature`), so a body and its signature can never be
 * seen apart. `<newest-first>` is `SNAPSHOT_SEQ_CEILING - seq`, zero-padded: S3
 * lists keys in ascending byte order, so `ListObjectsV2 MaxKeys=1` on the
 * snapshots folder returns the newest snapshot in one call.
 *
 * This file has no SDK import: `s3ClientConfig` returns a plain object that
 * either side passes to `new S3Client(...)`.
 */
import { z } from 'zod';
import { objectRelPath } from './content-address.js';

/** User-metadata key (without `x-amz-meta-`) carrying the SIGNATURE_HEADER value of a snapshot. */
export const S3_SIGNATURE_METADATA = 'metasync-signature';
/** User-metadata key carrying a snapshot's signed statement (HEADERS.snapshotStatement's value). */
export const S3_STATEMENT_METADATA = 'metasync-snapshot-statement';
/** User-metadata key carrying the sha256 hex of an object, for operators and tools. */
export const S3_SHA256_METADATA = 'metasync-sha256';

export const S3_OBJECTS_FOLDER = 'objects/';
export const S3_SNAPSHOTS_FOLDER = 'snapshots/';

/** The newest-first number is `SNAPSHOT_SEQ_CEILING - seq`; exact in doubles, 16 digits. */
export const SNAPSHOT_SEQ_CEILING = Number.MAX_SAFE_INTEGER;
const NEWEST_FIRST_DIGITS = 16;

const PREFIX_CHARS = /^[A-Za-z0-9!_.*'()/-]*$/;

/**
 * `''` or a key prefix ending in exactly one `/` (`a/b` -> `a/b/`). Throws a
 * TypeError naming the value for characters S3 keys should not carry.
 */
export function normalizeS3Prefix(prefix: string | undefined): string {
  const trimmed = (prefix ?? '').replace(/^\/+/, '').replace(/\/+$/, '');
  if (trimmed === '') return '';
  if (!PREFIX_CHARS.test(trimmed) || trimmed.includes('//') || trimmed.split('/').some((part) => part === '.' || part === '..')) {
    throw new TypeError(
      `expected an S3 key prefix of letters, digits and !_.*'()/- without empty, . or .. segments, got ${JSON.stringify(prefix)}`,
    );
  }
  return `${trimmed}/`;
}

/** Key of the object with that sha256 under a normalized prefix. */
export function s3ObjectKey(prefix: string, sha256: string): string {
  return `${prefix}${S3_OBJECTS_FOLDER}${objectRelPath(sha256)}`;
}

/** Key of the snapshot of generation `seq` under a normalized prefix. */
export function s3SnapshotKey(prefix: string, seq: number): string {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new TypeError(`expected a non-negative safe integer seq, got ${seq}`);
  const newestFirst = String(SNAPSHOT_SEQ_CEILING - seq).padStart(NEWEST_FIRST_DIGITS, '0');
  return `${prefix}${S3_SNAPSHOTS_FOLDER}${newestFirst}-${seq}.json`;
}

/** The folder `ListObjectsV2` scans for snapshots, newest first. */
export function s3SnapshotsPrefix(prefix: string): string {
  return `${prefix}${S3_SNAPSHOTS_FOLDER}`;
}

/** The seq a snapshot key names, or undefined for any other key (including a key whose two numbers disagree). */
export function parseS3SnapshotKey(prefix: string, key: string): number | undefined {
  if (!key.startsWith(s3SnapshotsPrefix(prefix))) return undefined;
  const match = /^(\d{16})-(\d{1,16})\.json$/.exec(key.slice(s3SnapshotsPrefix(prefix).length));
  if (match === null) return undefined;
  const seq = Number(match[2]);
  if (!Number.isSafeInteger(seq) || SNAPSHOT_SEQ_CEILING - seq !== Number(match[1])) return undefined;
  return seq;
}

/** How the SDK computes and checks checksums; `when-required` suits most S3-compatible servers. */
export const S3_CHECKSUM_MODES = ['when-required', 'when-supported'] as const;
export type S3ChecksumMode = (typeof S3_CHECKSUM_MODES)[number];

export interface S3ConnectionOptions {
  /** e.g. `eu-west-1`; absent = the SDK's standard chain (AWS_REGION, profile). */
  region?: string | undefined;
  /** Override for S3-compatible servers (`http://127.0.0.1:9000`); absent = AWS. */
  endpoint?: string | undefined;
  /** Path-style URLs (`endpoint/bucket/key`), needed by most S3-compatible servers. */
  forcePathStyle?: boolean | undefined;
  checksumMode?: S3ChecksumMode | undefined;
  /** TCP connect budget; default 5 s. */
  connectTimeoutMs?: number | undefined;
  /** Whole-request budget, so a hung endpoint cannot stall a publish forever; default 30 s. */
  requestTimeoutMs?: number | undefined;
}

/** The subset of the SDK's S3ClientConfig this project sets; credentials come from the SDK's standard chain. */
export interface S3ClientConfigShape {
  region?: string;
  endpoint?: string;
  forcePathStyle: boolean;
  requestChecksumCalculation: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';
  responseChecksumValidation: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';
  /** NodeHttpHandler options (the SDK's default has no timeouts at all). */
  requestHandler: { connectionTimeout: number; requestTimeout: number; throwOnRequestTimeout: true };
}

export function s3ClientConfig(options: S3ConnectionOptions): S3ClientConfigShape {
  const checksum = (options.checksumMode ?? 'when-required') === 'when-required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
  return {
    ...(options.region === undefined ? {} : { region: options.region }),
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    forcePathStyle: options.forcePathStyle ?? false,
    requestChecksumCalculation: checksum,
    responseChecksumValidation: checksum,
    requestHandler: {
      connectionTimeout: options.connectTimeoutMs ?? 5_000,
      requestTimeout: options.requestTimeoutMs ?? 30_000,
      throwOnRequestTimeout: true,
    },
  };
}

/**
 * zod fields for the bucket settings both daemons take (the primary's
 * write-through, the mirror's cold start): one set of rules, so a value one
 * side accepts the other cannot refuse.
 */
export const S3_SETTING_SCHEMAS = {
  bucket: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name')
    .optional(),
  prefix: z.string().transform((value, ctx) => {
    try {
      return normalizeS3Prefix(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  }),
  region: z
    .string()
    .regex(/^[a-z0-9-]{2,32}$/, 'must be a region name like eu-west-1')
    .optional(),
  endpoint: z
    .string()
    .url()
    .refine((u) => /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL')
    .optional(),
  checksums: z.enum(S3_CHECKSUM_MODES),
} as const;
