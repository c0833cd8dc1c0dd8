/**
 * The one error registry. Every user-reachable failure carries a stable string
 * code from here; callers match on `code`, never on `instanceof`.
 * `docs/errors.md` documents each code, and a test checks both directions.
 */
export const ERROR_CODES = {
  METASYNC_ERR_CONFIG_INVALID: { status: 500, summary: 'configuration is invalid' },
  METASYNC_ERR_PATH_INVALID: { status: 400, summary: 'repository path is not allowed' },
  METASYNC_ERR_PATH_NOT_FOUND: { status: 404, summary: 'no such path in the repository' },
  METASYNC_ERR_PATH_RESERVED: { status: 400, summary: "path belongs to the daemons' own routes, not the repository" },
  METASYNC_ERR_AUTH_MISSING: { status: 401, summary: 'credentials are required' },
  METASYNC_ERR_AUTH_INVALID: { status: 401, summary: 'credentials are unknown or revoked' },
  METASYNC_ERR_AUTH_SCOPE: { status: 403, summary: 'token is not allowed this call (vendor scope or admin)' },
  METASYNC_ERR_AUTH_MIRROR_CREDENTIAL: { status: 403, summary: 'mirror credential is not enrolled for that mirror id' },
  METASYNC_ERR_REQUEST_INVALID: { status: 400, summary: 'request is malformed' },
  METASYNC_ERR_REQUEST_TOO_LARGE: { status: 413, summary: 'request body exceeds the limit' },
  METASYNC_ERR_RATE_LIMITED: { status: 429, summary: 'too many requests' },
  METASYNC_ERR_PACKAGE_INVALID: { status: 422, summary: 'package metadata breaks a rule' },
  METASYNC_ERR_PACKAGE_NOT_FOUND: { status: 404, summary: 'no such package or version' },
  METASYNC_ERR_OBJECT_HASH_MISMATCH: { status: 502, summary: 'object bytes do not match their sha256' },
  METASYNC_ERR_OBJECT_NOT_FOUND: { status: 404, summary: 'no object with that sha256' },
  METASYNC_ERR_OBJECT_TOO_LARGE: { status: 502, summary: 'object is larger than announced' },
  METASYNC_ERR_SIGNATURE_INVALID: { status: 502, summary: 'signature does not verify' },
  METASYNC_ERR_SIGNATURE_UNKNOWN_KEY: { status: 502, summary: 'signed by a key that is not trusted' },
  METASYNC_ERR_SYNC_RESYNC_REQUIRED: { status: 410, summary: 'journal no longer reaches back that far' },
  METASYNC_ERR_SYNC_ROLLBACK: { status: 502, summary: 'primary sent state older than already applied' },
  METASYNC_ERR_SYNC_CHALLENGE_FAILED: { status: 502, summary: 'state does not answer the mirror freshness challenge' },
  METASYNC_ERR_SYNC_PROTOCOL: { status: 502, summary: 'primary answered outside the sync protocol' },
  METASYNC_ERR_SYNC_UNREACHABLE: { status: 503, summary: 'primary cannot be reached' },
  METASYNC_ERR_DIST_NOT_FOUND: { status: 404, summary: 'no dist archive with that package, reference and type in the metadata' },
  METASYNC_ERR_DIST_ORIGIN_REFUSED: { status: 502, summary: 'dist url is not an origin the mirror may fetch from' },
  METASYNC_ERR_DIST_FETCH_FAILED: { status: 502, summary: 'dist archive could not be fetched from its origin' },
  METASYNC_ERR_DIST_TOO_LARGE: { status: 502, summary: 'dist archive is larger than --dist-max-bytes' },
  METASYNC_ERR_DIST_CHECKSUM_MISMATCH: { status: 502, summary: 'dist archive does not match the shasum in the metadata' },
  METASYNC_ERR_DIST_PIN_MISMATCH: { status: 502, summary: 'dist archive differs from the bytes pinned for that reference' },
  METASYNC_ERR_DIST_UNPINNED: { status: 502, summary: 'dist archive could not be pinned by the primary' },
  METASYNC_ERR_JOURNAL_CORRUPT: { status: 500, summary: 'journal record failed its checksum' },
  METASYNC_ERR_STORE_NO_SPACE: { status: 507, summary: 'disk is full' },
  METASYNC_ERR_SOURCE_REFUSED: { status: 422, summary: 'source file refused' },
  METASYNC_ERR_SOURCE_WATCH_LIMIT: { status: 500, summary: 'source tree watch hit a limit; the tree is scanned periodically instead' },
  METASYNC_ERR_DNS_CALL_FAILED: { status: 502, summary: 'DNS provider call failed' },
  METASYNC_ERR_S3_CALL_FAILED: { status: 502, summary: 'S3 call failed' },
  METASYNC_ERR_EC2_CALL_FAILED: { status: 502, summary: 'EC2 call failed' },
  METASYNC_ERR_EC2_CONFLICT: {
    status: 409,
    summary: 'EC2 instances of a mirror do not match the launch (another release, several, or a reused client token)',
  },
  METASYNC_ERR_EC2_INSTANCE_FAILED: { status: 502, summary: 'EC2 instance stopped or terminated instead of running' },
  METASYNC_ERR_CLI_USAGE: { status: 400, summary: 'command line is not valid' },
  METASYNC_ERR_NODE_UNSUPPORTED: { status: 500, summary: 'Node.js is older than metasync needs' },
  METASYNC_ERR_CLI_TIMEOUT: { status: 504, summary: 'an operator CLI wait did not finish in time' },
  METASYNC_ERR_CLI_NO_FRESH_MIRROR: { status: 409, summary: 'the command would leave a region or the whole name with no fresh mirror' },
  METASYNC_ERR_LAUNCH_FAILED: { status: 500, summary: 'a launcher could not create, find or destroy a mirror server' },
  METASYNC_ERR_CONFIG_KEY_UNPINNED: { status: 500, summary: "a mirror was started without the primary's pinned key" },
  METASYNC_ERR_TLS_HANDSHAKE: { status: 502, summary: 'TLS handshake with the peer failed (untrusted certificate, wrong name, not TLS)' },
  METASYNC_ERR_TLS_RELOAD_FAILED: { status: 500, summary: 'renewed TLS certificate or key could not be loaded; the current one stays' },
  METASYNC_ERR_UPSTREAM_UNREACHABLE: { status: 502, summary: 'the followed upstream repository could not be reached or kept failing' },
  METASYNC_ERR_UPSTREAM_INVALID: { status: 502, summary: 'the followed upstream answered a malformed document; it is not published' },
  METASYNC_ERR_UPSTREAM_LAGGING: { status: 503, summary: 'the upstream still serves a file older than its change feed announced' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class MetasyncError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MetasyncError';
    this.code = code;
    this.statusCode = ERROR_CODES[code].status;
    this.details = details;
  }
}

/** Builds a project error; `details` names the offending path, URL or hash. */
export function metasyncError(code: ErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown): MetasyncError {
  return new MetasyncError(code, message, details, cause === undefined ? undefined : { cause });
}

export function isMetasyncError(err: unknown, code?: ErrorCode): err is MetasyncError {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as { code?: unknown }).code === 'string' &&
    (err as { code: string }).code in ERROR_CODES &&
    (code === undefined || (err as { code: string }).code === code)
  );
}

/** True for a Node system error with the given errno code (ENOENT, EEXIST, ENOSPC...). */
export function hasErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}
