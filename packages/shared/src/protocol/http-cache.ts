/**
 * HTTP caching and content negotiation shared by the primary and the mirror,
 * so both answer Composer identically.
 */

export function formatHttpDate(epochMs: number): string {
  return new Date(epochMs).toUTCString();
}

/** Seconds resolution, as HTTP dates have; NaN-safe (undefined for garbage). */
export function parseHttpDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/** The strong ETag for an object: its content hash. */
export function etagFor(sha256: string): string {
  return `"${sha256}"`;
}

/**
 * RFC 9110 13.2.2: If-None-Match wins over If-Modified-Since.
 * Last-Modified is compared at second resolution.
 */
export function isNotModified(
  headers: { 'if-none-match'?: string | undefined; 'if-modified-since'?: string | undefined },
  current: { etag: string; lastModifiedMs: number },
): boolean {
  const ifNoneMatch = headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() === '*') return true;
    return ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === current.etag);
  }
  const since = parseHttpDate(headers['if-modified-since']);
  if (since === undefined) return false;
  return Math.floor(current.lastModifiedMs / 1000) * 1000 <= since;
}

export type ContentEncoding = 'br' | 'gzip' | 'identity';

/** Picks the best precompressed variant the client accepts (q=0 excludes). */
export function chooseEncoding(acceptEncoding: string | undefined, available: readonly ContentEncoding[]): ContentEncoding {
  if (acceptEncoding === undefined || acceptEncoding === '') return 'identity';
  const accepted = new Map<string, number>();
  for (const part of acceptEncoding.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (name === undefined || name === '') continue;
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    accepted.set(name, Number.isFinite(q) ? q : 0);
  }
  const wildcard = accepted.get('*');
  const qualityOf = (encoding: string): number => accepted.get(encoding) ?? wildcard ?? 0;
  for (const encoding of ['br', 'gzip'] as const) {
    if (available.includes(encoding) && qualityOf(encoding) > 0) return encoding;
  }
  return 'identity';
}

const CONTENT_TYPES: Record<string, string> = {
  json: 'application/json',
  html: 'text/html; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
  xml: 'application/xml',
  zip: 'application/zip',
  gz: 'application/gzip',
  tar: 'application/x-tar',
};

export function contentTypeFor(path: string): string {
  // Nearly every repository path: answered without slicing a new string per request.
  if (path.endsWith('.json')) return 'application/json';
  const dot = path.lastIndexOf('.');
  const extension = dot === -1 ? '' : path.slice(dot + 1).toLowerCase();
  return CONTENT_TYPES[extension] ?? 'application/octet-stream';
}

/**
 * Root and p2 files change on publish: clients may reuse them briefly but must
 * revalidate (If-Modified-Since is cheap). Content-addressed URLs never change.
 */
export function cacheControlFor(path: string): string {
  if (path === 'packages.json') return 'public, max-age=0, must-revalidate';
  if (path.startsWith('p2/')) return 'public, max-age=60, stale-while-revalidate=30';
  return 'public, max-age=300';
}

export const IMMUTABLE_CACHE_CONTROL = 'public, max-age=31536000, immutable';
