import type { IncomingMessage, OutgoingHttpHeader, ServerResponse } from 'node:http';
import {
  HEADERS,
  cacheControlFor,
  chooseEncoding,
  contentTypeFor,
  etagFor,
  formatHttpDate,
  isNotModified,
  isRepoPath,
  type ContentEncoding,
} from '@metasync/shared';
import { VARIANT_SUFFIX, type ObjectStore } from '@metasync/store';
import type { HotCache } from './hot-cache.js';
import type { IndexEntry, IndexState } from '../index/index-state.js';
import { createBoundedMemo } from './bounded-memo.js';
import { takeAnswerHeader, type AnswerHeaders } from './request-headers.js';
import { readWholeSync } from './read-whole-sync.js';
import type { VariantSizes } from './variant-sizes.js';

/**
 * The hot path of a mirror, in front of fastify: a GET/HEAD of a plain
 * repository path that is in the index is answered straight from node's http
 * server, with headers prebuilt once per index entry, from the hot cache or,
 * on a miss, by a synchronous read of the (small) object file. Everything else
 * (proxy fallback, odd URLs, large objects, health, metrics, any read error)
 * returns false and goes to fastify, which answers with the same headers.
 *
 *   request --plain URL, GET/HEAD, entry in index?--no--> fastify
 *       | yes: entry resolved ONCE, no await until the response is written
 *       v
 *   304 when If-None-Match / If-Modified-Since match
 *   HEAD: headers only (variant sizes: one stat per variant, once per object)
 *   GET: the best variant the client accepts: hot cache, else read from disk
 *        (open, fstat, read, close; ENOENT = no such variant) -> hot cache
 *
 * Why synchronous reads: the serve benchmark compares with nginx, which also
 * reads files with blocking calls in its worker. For a page-cached object of a
 * few KiB, open+read+close costs a few microseconds, while the async route
 * (four thread-pool round trips, promises, fastify's reply) costs ten times
 * that in CPU. The block is bounded by MAX_SYNC_READ_BYTES (read-whole-sync.ts).
 *
 * Invariant 3 holds more strictly here than in the route: nothing yields
 * between resolving the entry and writing the whole response.
 */
export interface FastPathOptions {
  index: IndexState;
  store: ObjectStore;
  hotCache: HotCache;
  variantSizes: VariantSizes;
}

/** Responses answered here; the metrics endpoint folds them in at scrape time (no label hashing per request). */
export interface FastPathCounts {
  ok: number;
  notModified: number;
  cacheHits: number;
  cacheMisses: number;
}

/** A request as the fast path sees it (the raw-socket front parses the same fields). */
export interface FastRequest extends AnswerHeaders {
  method: 'GET' | 'HEAD';
  /** The request target as sent. */
  url: string;
}

/** A response's header list, built once per entry, encoding and seq; `raw` is its HTTP/1.1 text. */
export interface BuiltHeaders {
  seq: number;
  length: number;
  list: OutgoingHttpHeader[];
  raw?: Buffer;
}

export interface FastAnswer {
  status: 200 | 304;
  headers: BuiltHeaders;
  /** Undefined for HEAD and 304. */
  body: Buffer | undefined;
}

export interface FastPath {
  /** The answer for a plain GET/HEAD of a path in the index, or undefined: the careful route must answer. */
  answer(request: FastRequest): FastAnswer | undefined;
  /** The same for node's http server: true when it answered. */
  tryServe(req: IncomingMessage, res: ServerResponse): boolean;
  counts(): Readonly<FastPathCounts>;
  /** Paths whose headers are held prebuilt now. */
  prebuiltPaths(): number;
}

/** Only URLs built from repository-path characters, without a query: anything else takes the careful route. */
const PLAIN_URL = /^\/[A-Za-z0-9_~@+$=-][A-Za-z0-9_.~@+$=/-]*$/;
const MAX_ACCEPT_CHOICES = 256;
/**
 * Prebuilt headers are kept for about this many to twice this many paths.
 * One entry's set costs ~1-2 KB of heap; kept for every path ever requested it
 * grew a 100k-path mirror by ~250 MB under a long-tail load (bench serve ->
 * mirror-rss). Hot paths stay memoised; a tail path rebuilds its headers (a few
 * microseconds).
 */
const RESPONSE_MEMO_GENERATION = 8_192;

/** What the responses for one path's current index entry share, built on its first request and rebuilt when the path gets a new entry. */
interface EntryResponses {
  /** The index entry these were built for: a republished path has a new entry, so they are rebuilt. */
  entry: IndexEntry;
  /** isRepoPath(path), checked once. */
  servable: boolean;
  /** `<store>/ab/<rest>`: a variant's file is this plus its suffix. */
  file: string;
  etag: string;
  /** etag, last-modified, cache-control, vary (the headers of a 304). */
  validators: OutgoingHttpHeader[];
  contentType: string;
  /** Full 200 header lists per encoding, with the length and seq they were built for. */
  ok: Partial<Record<ContentEncoding, BuiltHeaders>>;
  notModified?: BuiltHeaders;
}

export function createFastPath(options: FastPathOptions): FastPath {
  const { index, store, hotCache, variantSizes } = options;
  // Keyed by path, not by entry: keyed by entry, every republish left the old
  // entry's headers (and their raw buffers) in the memo until 8k more sets
  // rotated it, so a mirror following frequent publishes grew steadily (soak).
  const responses = createBoundedMemo<string, EntryResponses>(RESPONSE_MEMO_GENERATION);
  /** Accept-Encoding value -> the encodings it takes, best first (always ending in identity). */
  const acceptChoices = new Map<string, readonly ContentEncoding[]>();
  const counts: FastPathCounts = { ok: 0, notModified: 0, cacheHits: 0, cacheMisses: 0 };

  function responsesOf(path: string, entry: IndexEntry): EntryResponses {
    let found = responses.get(path);
    if (found === undefined || found.entry !== entry) {
      const etag = etagFor(entry.sha256);
      found = {
        entry,
        servable: isRepoPath(path),
        file: store.pathOf(entry.sha256),
        etag,
        validators: [
          'etag',
          etag,
          'last-modified',
          formatHttpDate(entry.mtime),
          'cache-control',
          cacheControlFor(path),
          'vary',
          'Accept-Encoding',
        ],
        contentType: contentTypeFor(path),
        ok: {},
      };
      responses.set(path, found);
    }
    return found;
  }

  function okHeaders(found: EntryResponses, encoding: ContentEncoding, length: number): BuiltHeaders {
    let built = found.ok[encoding];
    if (built === undefined || built.seq !== index.seq || built.length !== length) {
      const list = [...found.validators, 'content-type', found.contentType, 'content-length', String(length)];
      if (encoding !== 'identity') list.push('content-encoding', encoding);
      list.push(HEADERS.seq, String(index.seq));
      built = { seq: index.seq, length, list };
      found.ok[encoding] = built;
    }
    return built;
  }

  function notModifiedHeaders(found: EntryResponses): BuiltHeaders {
    if (found.notModified === undefined || found.notModified.seq !== index.seq) {
      found.notModified = { seq: index.seq, length: 0, list: [...found.validators, HEADERS.seq, String(index.seq)] };
    }
    return found.notModified;
  }

  function acceptedEncodings(accept: string | undefined): readonly ContentEncoding[] {
    const key = accept ?? '';
    let choices = acceptChoices.get(key);
    if (choices === undefined) {
      // chooseEncoding's own order (br, gzip, identity), so a first found variant is its answer.
      choices = [...(['br', 'gzip'] as const).filter((encoding) => chooseEncoding(accept, [encoding]) === encoding), 'identity'];
      if (acceptChoices.size >= MAX_ACCEPT_CHOICES) acceptChoices.clear();
      acceptChoices.set(key, choices);
    }
    return choices;
  }

  /** The best accepted variant and its bytes, from memory or disk; undefined sends the request to fastify. */
  function bodyOf(
    entry: IndexEntry,
    found: EntryResponses,
    accept: string | undefined,
  ): { encoding: ContentEncoding; body: Buffer } | undefined {
    const known = variantSizes.known(entry.sha256);
    for (const encoding of acceptedEncodings(accept)) {
      // Variants whose absence is known are skipped; unknown ones are tried on disk (ENOENT = absent).
      if (known !== undefined && encoding !== 'identity' && known.sizes[encoding] === undefined) continue;
      const key = entry.sha256 + VARIANT_SUFFIX[encoding];
      const cached = hotCache.get(key);
      if (cached !== undefined) {
        counts.cacheHits++;
        return { encoding, body: cached };
      }
      const read = readWholeSync(found.file + VARIANT_SUFFIX[encoding]);
      if (read === 'absent') {
        if (encoding === 'identity') return undefined;
        // Learn which variants exist (one stat each), so later requests skip the missing one.
        variantSizes.loadSync(entry);
        continue;
      }
      if (read === undefined || (encoding === 'identity' && read.length !== entry.size)) return undefined;
      counts.cacheMisses++;
      if (hotCache.admits(read.length)) hotCache.set(key, read);
      return { encoding, body: read };
    }
    return undefined;
  }

  function answer(request: FastRequest): FastAnswer | undefined {
    const { method, url } = request;
    if (!PLAIN_URL.test(url)) return undefined;
    const path = url.slice(1);
    const entry = index.paths.get(path);
    if (entry === undefined) return undefined;
    const found = responsesOf(path, entry);
    if (!found.servable) return undefined;
    if (
      (request.ifNoneMatch !== undefined || request.ifModifiedSince !== undefined) &&
      isNotModified(
        { 'if-none-match': request.ifNoneMatch, 'if-modified-since': request.ifModifiedSince },
        { etag: found.etag, lastModifiedMs: entry.mtime },
      )
    ) {
      counts.notModified++;
      return { status: 304, headers: notModifiedHeaders(found), body: undefined };
    }
    if (method === 'HEAD') {
      const sizes = variantSizes.known(entry.sha256) ?? variantSizes.loadSync(entry);
      if (sizes === undefined) return undefined;
      const encoding = chooseEncoding(request.acceptEncoding, sizes.available);
      counts.ok++;
      return { status: 200, headers: okHeaders(found, encoding, sizes.sizes[encoding] ?? entry.size), body: undefined };
    }
    const chosen = bodyOf(entry, found, request.acceptEncoding);
    if (chosen === undefined) return undefined;
    counts.ok++;
    return { status: 200, headers: okHeaders(found, chosen.encoding, chosen.body.length), body: chosen.body };
  }

  return {
    counts: () => counts,
    prebuiltPaths: () => responses.size(),
    answer,
    tryServe(req, res) {
      const method = req.method;
      if (method !== 'GET' && method !== 'HEAD') return false;
      const headers = requestHeaders(req.rawHeaders);
      if (headers === undefined) return false;
      const answered = answer({ method, url: req.url ?? '', ...headers });
      if (answered === undefined) return false;
      res.writeHead(answered.status, answered.headers.list);
      res.end(answered.body);
      return true;
    },
  };
}

/**
 * The three request headers the answer depends on, read from the raw list
 * (building `req.headers` would copy every header). A repeated one returns
 * undefined: node would merge it, so the careful route answers that request.
 */
function requestHeaders(raw: readonly string[]): AnswerHeaders | undefined {
  const found: AnswerHeaders = { acceptEncoding: undefined, ifNoneMatch: undefined, ifModifiedSince: undefined };
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const length = name.length;
    // Only the three names' lengths (15, 13, 17) are worth lowercasing.
    if (length !== 15 && length !== 13 && length !== 17) continue;
    if (takeAnswerHeader(found, name.toLowerCase(), raw[i + 1]!) === 'repeated') return undefined;
  }
  return found;
}
