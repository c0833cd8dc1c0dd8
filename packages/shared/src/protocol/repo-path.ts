import { metasyncError } from '../errors.js';

/** Longest repository path we accept, in bytes; Composer paths are far shorter. */
export const MAX_REPO_PATH_BYTES = 512;
const MAX_SEGMENTS = 16;
// Composer names use [a-z0-9_.-]; Satis/Packagist add `$` (include/all$<hash>.json),
// `~` (~dev.json), `@` and `+` appear in provider hashes and version-named files.
const SEGMENT = /^[A-Za-z0-9_~@+$=-][A-Za-z0-9_.~@+$=-]*$/;

/**
 * Validates a repository-relative path (`p2/acme/foo.json`). Rejects anything
 * that could leave the repository namespace: absolute paths, `..`, `.` and
 * dotfile segments, backslashes, NUL, empty segments, oversize paths.
 * Returns the path unchanged when valid so callers can use it as a key.
 */
export function assertRepoPath(path: string): string {
  const reason = repoPathProblem(path);
  if (reason !== undefined) {
    throw metasyncError('METASYNC_ERR_PATH_INVALID', `repository path ${JSON.stringify(path.slice(0, 200))} is not allowed: ${reason}`, {
      path: path.slice(0, 200),
      reason,
    });
  }
  return path;
}

export function isRepoPath(path: string): boolean {
  return repoPathProblem(path) === undefined;
}

function repoPathProblem(path: string): string | undefined {
  if (typeof path !== 'string' || path.length === 0) return 'empty';
  if (Buffer.byteLength(path) > MAX_REPO_PATH_BYTES) return `longer than ${MAX_REPO_PATH_BYTES} bytes`;
  const segments = path.split('/');
  if (segments.length > MAX_SEGMENTS) return `more than ${MAX_SEGMENTS} segments`;
  for (const segment of segments) {
    if (segment === '') return 'empty segment or leading/trailing slash';
    if (segment === '.' || segment === '..') return 'dot segment';
    if (segment.startsWith('.')) return 'dotfile segment';
    if (!SEGMENT.test(segment)) return `segment ${JSON.stringify(segment.slice(0, 64))} has a character outside [A-Za-z0-9_.~@+$=-]`;
  }
  return undefined;
}

/**
 * Turns the path part of a request URL (`/p2/acme/foo.json?x`) into a repository
 * path, decoding percent-escapes exactly once and then validating the result.
 * `%2f`, `%2e%2e`, backslashes and NUL all end as METASYNC_ERR_PATH_INVALID.
 */
export function repoPathFromUrl(url: string): string {
  const queryAt = url.search(/[?#]/);
  const rawPath = queryAt === -1 ? url : url.slice(0, queryAt);
  if (!rawPath.startsWith('/')) {
    throw metasyncError('METASYNC_ERR_PATH_INVALID', `request target ${JSON.stringify(rawPath.slice(0, 200))} is not an origin-form path`, {
      path: rawPath.slice(0, 200),
      reason: 'not origin-form',
    });
  }
  const rawRelative = rawPath.slice(1);
  // An encoded slash would let one segment masquerade as two: refuse it before decoding.
  if (/%2f|%5c|%00/i.test(rawRelative)) {
    throw metasyncError(
      'METASYNC_ERR_PATH_INVALID',
      `request path ${JSON.stringify(rawPath.slice(0, 200))} contains an encoded separator or NUL`,
      {
        path: rawPath.slice(0, 200),
        reason: 'encoded separator',
      },
    );
  }
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawRelative);
  } catch (err) {
    throw metasyncError(
      'METASYNC_ERR_PATH_INVALID',
      `request path ${JSON.stringify(rawPath.slice(0, 200))} has a malformed percent-escape`,
      {
        path: rawPath.slice(0, 200),
        reason: 'malformed escape',
      },
      err,
    );
  }
  return assertRepoPath(decoded);
}
