/**
 * The sync protocol: the only contract between primary and mirror (they never
 * import each other). See docs/protocol.md for the prose version.
 *
 *   mirror                                   primary
 *     | GET  /sync/v1/state[?nonce=N] -------> |  signed {seq, time, snapshotSeq, oldestSeq, keys, nonce}
 *     | GET  /sync/v1/events (SSE) ----------> |  "head" event now and on every commit
 *     | GET  /sync/v1/changes?since=M -------> |  signed ChangesBatch (M, to]  | 410 resync
 *     | GET  /sync/v1/objects/<sha256> ------> |  bytes (br/gzip in transit), immutable
 *     | POST /sync/v1/objects/pack ----------> |  many objects in one framed stream
 *     | GET  /sync/v1/snapshot --------------> |  signed Snapshot (full manifest)
 *     | POST /sync/v1/ack {seq} -------------> |  records the mirror's applied seq
 *     | GET  /sync/v1/keys?signer=K ---------> |  KeySet signed by key K (key rotation)
 *
 * Signed documents (changes, snapshots) are sent as their exact JSON bytes with
 * the signature in the SIGNATURE_HEADER, so nothing needs canonical JSON: the
 * verifier checks the bytes it received, then parses them.
 */
import { z } from 'zod';
import { isSha256Hex } from './content-address.js';
import { isRepoPath } from './repo-path.js';

export const PROTOCOL_VERSION = 1;
export const SYNC_PREFIX = '/sync/v1';

export const SYNC_ROUTES = {
  state: `${SYNC_PREFIX}/state`,
  events: `${SYNC_PREFIX}/events`,
  changes: `${SYNC_PREFIX}/changes`,
  objects: `${SYNC_PREFIX}/objects`,
  objectPack: `${SYNC_PREFIX}/objects/pack`,
  snapshot: `${SYNC_PREFIX}/snapshot`,
  ack: `${SYNC_PREFIX}/ack`,
  mirrors: `${SYNC_PREFIX}/mirrors`,
  keys: `${SYNC_PREFIX}/keys`,
} as const;

export const HEADERS = {
  /** `<keyId>.<base64url signature>` over the exact response body bytes. */
  signature: 'x-metasync-signature',
  /** Sent by mirrors on every sync call so the primary can name them. */
  mirrorId: 'x-metasync-mirror',
  /** Set by a mirror on responses it proxied from the primary. */
  proxied: 'x-metasync-proxied',
  /** The generation a response was served from. */
  seq: 'x-metasync-seq',
} as const;

/** Most objects one pack request may name. */
export const MAX_PACK_OBJECTS = 1000;
/** Most generations merged into one changes batch before `more` is set. */
export const DEFAULT_CHANGES_LIMIT = 10_000;

/** POST /admin/keys/rotate: the longest overlap the primary accepts (90 days), so a leaked key cannot be kept valid forever. */
export const MAX_KEY_OVERLAP_MS = 90 * 24 * 60 * 60 * 1000;

const repoPath = z.string().refine(isRepoPath, 'must be a valid repository path');
const sha256 = z.string().refine(isSha256Hex, 'must be a lowercase sha256 hex digest');
const seq = z.number().int().nonnegative();
const epochMs = z.number().int().nonnegative();

/** A path that exists in a generation. `mtime` is the publish time (ms): the Last-Modified. */
export const pathEntrySchema = z.object({
  path: repoPath,
  sha256,
  size: z.number().int().nonnegative(),
  mtime: epochMs,
});
export type PathEntry = z.infer<typeof pathEntrySchema>;

export const pathDeletionSchema = z.object({
  path: repoPath,
  deleted: z.literal(true),
  mtime: epochMs,
});
export type PathDeletion = z.infer<typeof pathDeletionSchema>;

export const changeEntrySchema = z.union([pathEntrySchema, pathDeletionSchema]);
export type ChangeEntry = z.infer<typeof changeEntrySchema>;

export function isDeletion(entry: ChangeEntry): entry is PathDeletion {
  return 'deleted' in entry && entry.deleted === true;
}

/** One committed generation as the journal holds it. */
export interface Generation {
  seq: number;
  /** Commit time, ms since the epoch. */
  time: number;
  entries: ChangeEntry[];
}

export const publicKeyInfoSchema = z.object({
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  /** Raw 32-byte Ed25519 public key, base64url. */
  publicKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  /** The key signs new documents while true; retired keys stay listed during their overlap. */
  active: z.boolean(),
  /** After this instant (ms) a mirror must refuse documents signed by the key; absent = no end. */
  notAfter: epochMs.optional(),
});
export type PublicKeyInfo = z.infer<typeof publicKeyInfoSchema>;

/**
 * The freshness challenge: a mirror sends `state?nonce=<n>` with a fresh random
 * nonce; the primary echoes it in the state body and signs the body, so a
 * recorded (replayed) state can never answer a new challenge. See docs/protocol.md.
 */
export const STATE_NONCE_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;

export const stateResponseSchema = z.object({
  protocol: z.literal(PROTOCOL_VERSION),
  /** The challenge nonce of the request, echoed; absent when the request carried none. */
  nonce: z.string().regex(STATE_NONCE_PATTERN).optional(),
  seq,
  /** Commit time of `seq`, ms. */
  time: epochMs,
  /** Oldest seq M for which `changes?since=M` still answers. */
  oldestSeq: seq,
  snapshotSeq: seq,
  keys: z.array(publicKeyInfoSchema).min(1),
});
export type StateResponse = z.infer<typeof stateResponseSchema>;

/**
 * The primary's key set, signed by the key the mirror names in `?signer=`
 * (one it already trusts): how a mirror learns a rotated-in key without
 * trusting the network. `version` grows by one per rotation; a mirror never
 * goes back to a lower version. See docs/protocol.md, "Key rotation".
 */
export const keySetSchema = z.object({
  kind: z.literal('keys'),
  version: seq,
  /** When the primary answered, ms. */
  issuedAt: epochMs,
  /** The active key, then retired keys still within their overlap (each with `notAfter`). */
  keys: z.array(publicKeyInfoSchema).min(1),
});
export type KeySet = z.infer<typeof keySetSchema>;

export const changesBatchSchema = z.object({
  kind: z.literal('changes'),
  /** Exclusive: the batch applies on top of generation `from`. */
  from: seq,
  /** Inclusive: after applying, the mirror is at generation `to`. */
  to: seq,
  /** The primary's head when it answered; `to < head` means ask again. */
  head: seq,
  /** Commit time of `to`, ms. */
  time: epochMs,
  /** One entry per changed path, last write wins, already merged across (from, to]. */
  entries: z.array(changeEntrySchema),
});
export type ChangesBatch = z.infer<typeof changesBatchSchema>;

export const snapshotSchema = z.object({
  kind: z.literal('snapshot'),
  seq,
  time: epochMs,
  entries: z.array(pathEntrySchema),
});
export type Snapshot = z.infer<typeof snapshotSchema>;

/** Body of the 410 answer to `changes?since=M` when M is older than the journal keeps. */
export const resyncResponseSchema = z.object({
  code: z.literal('METASYNC_ERR_SYNC_RESYNC_REQUIRED'),
  message: z.string(),
  oldestSeq: seq,
  snapshotSeq: seq,
});
export type ResyncResponse = z.infer<typeof resyncResponseSchema>;

/** SSE `head` event data. */
export const headEventSchema = z.object({ seq, time: epochMs });
export type HeadEvent = z.infer<typeof headEventSchema>;

export const ackRequestSchema = z.object({
  mirrorId: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/),
  region: z.string().regex(/^[a-z0-9-]{1,32}$/),
  /** Public base URL the mirror serves on, for operators and health checks. */
  url: z.string().url().max(512),
  seq,
  /** When the mirror made `seq` visible (its clock, ms); the primary uses its own receive time for lag. */
  appliedAt: epochMs,
});
export type AckRequest = z.infer<typeof ackRequestSchema>;

export const mirrorStatusSchema = z.object({
  mirrorId: z.string(),
  region: z.string(),
  url: z.string(),
  seq,
  lagSeq: z.number().int().nonnegative(),
  lagMs: z.number().int().nonnegative(),
  lastSeenAt: epochMs,
  connected: z.boolean(),
});
export type MirrorStatus = z.infer<typeof mirrorStatusSchema>;

export const mirrorsResponseSchema = z.object({
  seq,
  time: epochMs,
  mirrors: z.array(mirrorStatusSchema),
});
export type MirrorsResponse = z.infer<typeof mirrorsResponseSchema>;

export const packRequestSchema = z.object({
  objects: z.array(sha256).min(1).max(MAX_PACK_OBJECTS),
  /** Also send each object's precompressed gzip variant (`gzipLength` in its frame), so the mirror need not recompress. */
  gzip: z.boolean().optional(),
});
export type PackRequest = z.infer<typeof packRequestSchema>;

/**
 * A pack response (`application/x-metasync-pack`) is a sequence of frames:
 *
 *   +----------------+----------------------+-------------------+
 *   | u32 BE headLen | PackFrameHeader JSON | `length` bytes    |
 *   +----------------+----------------------+-------------------+
 *
 * `encoding` says how the bytes are compressed; the receiver decodes and checks
 * sha256 of the decoded bytes. A missing object has `missing: true, length: 0`.
 * When the request asked for `gzip`, `gzipLength` more bytes follow the body:
 * the object's gzip variant, which the receiver gunzips and compares with the
 * verified bytes before keeping it.
 */
export const packFrameHeaderSchema = z.object({
  sha256,
  length: z.number().int().nonnegative(),
  encoding: z.enum(['identity', 'br', 'gzip']),
  missing: z.boolean().optional(),
  gzipLength: z.number().int().nonnegative().optional(),
});
export type PackFrameHeader = z.infer<typeof packFrameHeaderSchema>;
export const PACK_CONTENT_TYPE = 'application/x-metasync-pack';

/**
 * First path segments the daemons use for their own APIs (sync, publish,
 * health, metrics). A path under one of them is never a repository path: the
 * primary must not publish one, and a mirror must not proxy one (its proxy
 * fallback would otherwise reach the primary's sync or admin API).
 */
export const RESERVED_TOP_SEGMENTS = ['sync', 'api', 'admin', 'metrics', 'healthz', 'health', 'status'] as const;

export function isReservedPath(path: string): boolean {
  const top = path.split('/', 1)[0] ?? '';
  return (RESERVED_TOP_SEGMENTS as readonly string[]).includes(top);
}
