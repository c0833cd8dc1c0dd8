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
 *     | POST /sync/v1/ack {seq} -------------> |  records the mirror's applied seq (mirror credential)
 *     | GET  /sync/v1/keys?signer=K ---------> |  KeySet signed by key K (key rotation)
 *
 * Acks and a push stream that names its mirror carry the mirror's credential
 * (`Authorization: Bearer <credential>`, issued at enrollment): 401 without,
 * 403 when it is not that mirror id's. Everything else is signed public data.
 *
 * Signed documents (changes, snapshots) are sent as their exact JSON bytes with
 * the signature in the SIGNATURE_HEADER, so nothing needs canonical JSON: the
 * verifier checks the bytes it received, then parses them.
 *
 * This file: routes, headers and limits. The bodies: documents.ts. The pack
 * stream's frames: pack-frame.ts.
 */

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
  /** `<keyId>.<base64url signature>` over the exact response body bytes (a repository answer: over proxy-answer.ts's message). */
  signature: 'x-metasync-signature',
  /** Sent by mirrors on every sync call so the primary can name them. */
  mirrorId: 'x-metasync-mirror',
  /** Set by a mirror on responses it proxied from the primary. */
  proxied: 'x-metasync-proxied',
  /** The generation a response was served from (signed in a repository answer: proxy-answer.ts). */
  seq: 'x-metasync-seq',
  /** A primary's repository answer: the path it vouches for (proxy-answer.ts). */
  path: 'x-metasync-path',
  /** A primary's repository answer: sha256 of the identity-encoded body. */
  sha256: 'x-metasync-sha256',
  /** A primary's repository answer: the path's Last-Modified, ms since the epoch. */
  mtime: 'x-metasync-mtime',
  /** A snapshot's signed statement of its body (snapshot-statement.ts), base64url; the signature covers it, not the body. */
  snapshotStatement: 'x-metasync-snapshot-statement',
} as const;

/** The primary's admin routes for mirror enrollment (admin publish token). */
export const MIRROR_CREDENTIAL_ROUTES = {
  /** POST: issue (or replace) the credential of a mirror id -> {mirrorId, credential}; DELETE: revoke it (idempotent). */
  one: (mirrorId: string) => `/admin/mirrors/${encodeURIComponent(mirrorId)}/credential`,
  /** GET: every enrolled mirror id with its digest and revoked flag (never a secret). */
  list: '/admin/mirrors/credentials',
} as const;

/** Most generations merged into one changes batch before `more` is set. */
export const DEFAULT_CHANGES_LIMIT = 10_000;

/** POST /admin/keys/rotate: the longest overlap the primary accepts (90 days), so a leaked key cannot be kept valid forever. */
export const MAX_KEY_OVERLAP_MS = 90 * 24 * 60 * 60 * 1000;

/**
 * First path segments the daemons use for their own routes (sync, publish,
 * admin, health, metrics, status). A path under one of them is never a
 * repository path: the primary refuses to ingest or publish one and never
 * serves one from its manifest, and a mirror neither serves nor proxies one
 * (its proxy fallback would otherwise reach the primary's sync or admin API).
 * `dists` is the mirror's archive route; `dist-pins` holds the primary's pins
 * documents (dists.ts), carried in generations but never served.
 * test/reserved-routes.test.ts checks that every route both daemons register
 * is covered, so a new route cannot be forgotten here.
 */
export const RESERVED_TOP_SEGMENTS = ['sync', 'api', 'admin', 'metrics', 'healthz', 'health', 'status', 'dists', 'dist-pins'] as const;

/** Whole paths the daemons serve outside those segments: the primary's Packagist-compatible change feed. */
export const RESERVED_PATHS = ['metadata/changes.json'] as const;

/**
 * True for a path (no leading slash) a daemon route owns; matched case-sensitively, as the router
 * matches. Allocates nothing: the mirror checks every request.
 */
export function isReservedPath(path: string): boolean {
  for (const segment of RESERVED_TOP_SEGMENTS) {
    if (path.startsWith(segment) && (path.length === segment.length || path.charCodeAt(segment.length) === 0x2f)) return true;
  }
  return (RESERVED_PATHS as readonly string[]).includes(path);
}
