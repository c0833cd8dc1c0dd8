/**
 * The documents of the sync protocol (see routes.ts for who sends which): a zod
 * schema per body, so both sides parse with the same rules.
 */
import { z } from 'zod';
import { isSha256Hex } from './content-address.js';
import { isRepoPath } from './repo-path.js';
import { PROTOCOL_VERSION } from './routes.js';

const repoPath = z.string().refine(isRepoPath, 'must be a valid repository path');
const sha256 = z.string().refine(isSha256Hex, 'must be a lowercase sha256 hex digest');
const seq = z.number().int().nonnegative();
const epochMs = z.number().int().nonnegative();

/**
 * The largest metadata object a path may point at: the compact tables keep sizes in 32 bits (a primary reads
 * source files of at most 64 MiB, and a journal record is at most 256 MiB).
 */
export const MAX_OBJECT_BYTES = 2 ** 32 - 1;

/** A path that exists in a generation. `mtime` is the publish time (ms): the Last-Modified. */
export const pathEntrySchema = z.object({
  path: repoPath,
  sha256,
  size: z.number().int().nonnegative().max(MAX_OBJECT_BYTES),
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

/** A mirror's identity: what it acks as, names its push stream with, and is enrolled under. */
export const MIRROR_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

export const ackRequestSchema = z.object({
  mirrorId: z.string().regex(MIRROR_ID_PATTERN),
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
