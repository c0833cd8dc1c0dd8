import type { IncomingMessage, OutgoingHttpHeader, ServerResponse } from 'node:http';
import { HEADERS, cacheControlFor, chooseEncoding, contentTypeFor, etagFor, formatHttpDate, isRepoPath, type ContentEncoding } from '@metasync/shared';
import type { HotCache } from '../hot-cache.js';
import type { IndexEntry, IndexState } from '../index-state.js';
import { VARIANT_SUFFIX } from '../store.js';
import type { VariantSizes } from './variant-sizes.js';

/**
 * The hot path of a mirror, in front of fastify: a GET/HEAD of a plain
 * repository path whose entry is in the index and whose chosen variant is in
 * the hot cache is answered straight from node's http server with headers
 * prebuilt once per index entry. Everything else (conditional requests, disk
 * reads, proxy fallback, odd URLs, health, metrics) returns false and goes to
 * fastify, which then fills the hot cache for the next request.
 *
 * Why: the serve benchmark compares with nginx `gzip_static`; fastify's
 * per-request routing, hooks and reply object cost about as much as the rest
 * of the response together. Semantics are identical to routes/repository.ts
 * (same shared helpers, same headers), and the entry is still resolved once.
 */
export interface FastPathOptions {
  index: IndexState;
  hotCache: HotCache;
  variantSizes: VariantSizes;
}

export interface FastPath {
  tryServe(req: IncomingMessage, res: ServerResponse): boolean;
  /** Responses answered here (metrics read it at scrape time). */
  served(): number;
}

/** Only URLs built from repository-path characters, without a query: anything else takes the careful route. */
const PLAIN_URL = /^\/[A-Za-z0-9_~@+$=-][A-Za-z0-9_.~@+$=/-]*$/;
const MAX_ENCODING_CHOICES = 256;

export function createFastPath(options: FastPathOptions): FastPath {
  const { index, hotCache, variantSizes } = options;
  const prebuilt = new WeakMap<IndexEntry, Partial<Record<ContentEncoding, OutgoingHttpHeader[]>>>();
  const encodingChoices = new Map<string, ContentEncoding>();
  let served = 0;
  let seqNumber = -1;
  let seqText = '';

  function headersFor(path: string, entry: IndexEntry, encoding: ContentEncoding, length: number): OutgoingHttpHeader[] {
    let perEntry = prebuilt.get(entry);
    if (perEntry === undefined) prebuilt.set(entry, (perEntry = {}));
    let headers = perEntry[encoding];
    if (headers === undefined) {
      headers = [
        'etag', etagFor(entry.sha256),
        'last-modified', formatHttpDate(entry.mtime),
        'cache-control', cacheControlFor(path),
        'vary', 'Accept-Encoding',
        'content-type', contentTypeFor(path),
        'content-length', String(length),
        ...(encoding === 'identity' ? [] : ['content-encoding', encoding]),
      ];
      perEntry[encoding] = headers;
    }
    return headers;
  }

  function encodingFor(accept: string | undefined, available: readonly ContentEncoding[]): ContentEncoding {
    const key = `${available.join(',')}|${accept ?? ''}`;
    let encoding = encodingChoices.get(key);
    if (encoding === undefined) {
      encoding = chooseEncoding(accept, available);
      if (encodingChoices.size >= MAX_ENCODING_CHOICES) encodingChoices.clear();
      encodingChoices.set(key, encoding);
    }
    return encoding;
  }

  return {
    served: () => served,
    tryServe(req, res) {
      const method = req.method;
      if (method !== 'GET' && method !== 'HEAD') return false;
      const url = req.url ?? '';
      if (!PLAIN_URL.test(url)) return false;
      if (req.headers['if-none-match'] !== undefined || req.headers['if-modified-since'] !== undefined) return false;
      const path = url.slice(1);
      const entry = index.paths.get(path);
      if (entry === undefined || !isRepoPath(path)) return false;
      const sizes = variantSizes.known(entry.sha256);
      if (sizes === undefined) return false;
      const encoding = encodingFor(req.headers['accept-encoding'], sizes.available);
      const body = hotCache.get(entry.sha256 + VARIANT_SUFFIX[encoding]);
      if (body === undefined) return false;
      if (index.seq !== seqNumber) {
        seqNumber = index.seq;
        seqText = String(seqNumber);
      }
      res.writeHead(200, [...headersFor(path, entry, encoding, body.length), HEADERS.seq, seqText]);
      res.end(method === 'HEAD' ? undefined : body);
      served++;
      return true;
    },
  };
}
