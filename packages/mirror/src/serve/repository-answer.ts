import { existsSync } from 'node:fs';
import type { OutgoingHttpHeader } from 'node:http';
import { gunzipSync } from 'node:zlib';
import {
  HEADERS,
  cacheControlFor,
  chooseEncoding,
  contentTypeFor,
  etagFor,
  formatHttpDate,
  isNotModified,
  isRepoPath,
  isReservedPath,
  type ContentEncoding,
  zlibChunkFor,
} from '@metasync/shared';
import type { ObjectStore, Variant } from '@metasync/store';
import type { HotCache } from './hot-cache.js';
import type { IndexEntry, IndexView } from '../index/index-state.js';
import type { AnswerHeaders } from './request-headers.js';
import { MAX_SYNC_READ_BYTES, readWholeSync } from './read-whole-sync.js';
import type { VariantSizes } from './variant-sizes.js';

/**
 * The one function that builds a repository answer (status, headers, variant,
 * body) for a GET/HEAD of a path in the index. Both serving paths call it:
 * the pre-routing fast path (fast-path.ts, for plain URLs) and the fastify
 * route (repository.ts, for everything else), so they cannot disagree.
 *
 *   path reserved or not in the index ──> 'absent' (the caller routes, 404s or proxies)
 *   entry resolved ONCE, nothing yields until the answer is built (invariant 3)
 *   If-None-Match / If-Modified-Since match ──> 304
 *   HEAD ──> 200, headers only (variant sizes: one stat per variant, once per object)
 *   GET ───> the best variant the client accepts: hot cache, else read whole
 *            (<= 1 MiB, sync: open, fstat, read, close) into the hot cache,
 *            else `file` to stream; identity of an object stored as its gzip
 *            file alone is its decoding (cached too, or streamed through gunzip)
 *   a stat or read failing ──> 'unreadable' (the route answers 404, never 5xx)
 *
 * Nothing is kept per path: the answer and its header list are built per
 * request from strings that already exist (the entry's sha256, the path's
 * content type and cache policy, Last-Modified per publish time, the seq),
 * a few hundred bytes that die young. A memo of prebuilt answers per path
 * was tried: under a long tail (100k paths, uniform) it missed most of the
 * time, and its discarded entries had lived long enough to reach the old
 * generation, so the churn became full GCs in the serving tail (and memory
 * that grew with the repository, which invariant 11 forbids).
 * Why synchronous reads: for a page-cached object of a few KiB open+read+close
 * costs a few microseconds; four thread-pool round trips and promises cost ten
 * times that in CPU (nginx also reads with blocking calls in its worker).
 */
export interface RepositoryAnswerOptions {
  index: IndexView;
  /** Only where objects are: serving threads read the store, they never write it. */
  store: Pick<ObjectStore, 'pathOf'>;
  hotCache: HotCache;
  variantSizes: VariantSizes;
}

export interface AnswerRequest extends AnswerHeaders {
  method: 'GET' | 'HEAD';
  /** A valid repository path, without the leading slash. */
  path: string;
}

export interface RepositoryAnswer {
  readonly status: 200 | 304;
  /** The response's header list ([name, value, ...]). */
  readonly headers: OutgoingHttpHeader[];
  /** Undefined for a 304. */
  readonly variant: Variant | undefined;
  /** The whole body; undefined for HEAD, 304, or when `file` is to be streamed. */
  readonly body: Buffer | undefined;
  /** A GET whose body is too large to read here: stream this file. */
  readonly file: string | undefined;
  /** `file` is the object's gzip file and the answer its decoding (identity asked of an object with no raw file). */
  readonly fileIsGzip: boolean;
}

/** Answers counted in plain numbers (no label hashing per request); /metrics folds them in at scrape time. */
export interface AnswerCounts {
  ok: number;
  notModified: number;
  cacheHits: number;
  cacheMisses: number;
}

export interface RepositoryAnswers {
  answer(request: AnswerRequest): RepositoryAnswer | 'absent' | 'unreadable';
  counts(): Readonly<AnswerCounts>;
}

const MAX_ACCEPT_CHOICES = 256;
/** Distinct publish times whose Last-Modified text is kept (a generation's paths mostly share a few). */
const MAX_HTTP_DATES = 4_096;

export function createRepositoryAnswers(options: RepositoryAnswerOptions): RepositoryAnswers {
  const { index, store, hotCache, variantSizes } = options;
  /** Accept-Encoding value -> the encodings it takes, best first (always ending in identity). */
  const acceptChoices = new Map<string, readonly ContentEncoding[]>();
  const httpDates = new Map<number, string>();
  const counts: AnswerCounts = { ok: 0, notModified: 0, cacheHits: 0, cacheMisses: 0 };
  let seqText = { seq: -1, text: '' };

  function lastModified(mtime: number): string {
    let text = httpDates.get(mtime);
    if (text === undefined) {
      text = formatHttpDate(mtime);
      if (httpDates.size >= MAX_HTTP_DATES) httpDates.clear();
      httpDates.set(mtime, text);
    }
    return text;
  }

  function currentSeq(): string {
    if (seqText.seq !== index.seq) seqText = { seq: index.seq, text: String(index.seq) };
    return seqText.text;
  }

  /** etag, last-modified, cache-control, vary: the headers of a 304, and the start of a 200's. */
  function validators(path: string, entry: IndexEntry, extra: number): OutgoingHttpHeader[] {
    const list: OutgoingHttpHeader[] = new Array(8 + extra);
    list[0] = 'etag';
    list[1] = etagFor(entry.sha256);
    list[2] = 'last-modified';
    list[3] = lastModified(entry.mtime);
    list[4] = 'cache-control';
    list[5] = cacheControlFor(path);
    list[6] = 'vary';
    list[7] = 'Accept-Encoding';
    return list;
  }

  function okAnswer(
    path: string,
    entry: IndexEntry,
    encoding: ContentEncoding,
    length: number,
    body: Buffer | undefined,
    file?: string,
    fileIsGzip = false,
  ): RepositoryAnswer {
    const identity = encoding === 'identity';
    const list = validators(path, entry, identity ? 6 : 8);
    list[8] = 'content-type';
    list[9] = contentTypeFor(path);
    list[10] = 'content-length';
    list[11] = length;
    list[12] = HEADERS.seq;
    list[13] = currentSeq();
    if (!identity) {
      list[14] = 'content-encoding';
      list[15] = encoding;
    }
    counts.ok++;
    return { status: 200, headers: list, variant: encoding, body, file, fileIsGzip };
  }

  function notModifiedAnswer(path: string, entry: IndexEntry): RepositoryAnswer {
    const list = validators(path, entry, 2);
    list[8] = HEADERS.seq;
    list[9] = currentSeq();
    counts.notModified++;
    return { status: 304, headers: list, variant: undefined, body: undefined, file: undefined, fileIsGzip: false };
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

  /** A body too large to read here (or a variant known to be): the route streams the file. */
  function streamedAnswer(path: string, entry: IndexEntry, accept: string | undefined): RepositoryAnswer | 'unreadable' {
    const sizes = variantSizes.known(entry.sha256) ?? variantSizes.loadSync(entry);
    if (sizes === undefined) return 'unreadable';
    const encoding = chooseEncoding(accept, sizes.available);
    if (encoding === 'identity' && sizes.sizes.gzip !== undefined && !existsSync(store.pathOf(entry.sha256))) {
      return okAnswer(path, entry, encoding, entry.size, undefined, store.pathOf(entry.sha256, 'gzip'), true);
    }
    return okAnswer(path, entry, encoding, sizes.sizes[encoding] ?? entry.size, undefined, store.pathOf(entry.sha256, encoding));
  }

  /**
   * Identity asked of an object stored as its gzip file alone (the store's layout): decoded here, once, into
   * the hot cache, as nginx's gunzip module answers a client that takes no gzip. The gzip file was verified to
   * decode to the object when it was stored; its decoding must still come out at the object's size.
   */
  function decodedAnswer(path: string, entry: IndexEntry, accept: string | undefined): RepositoryAnswer | 'unreadable' {
    if (entry.size > MAX_SYNC_READ_BYTES) return streamedAnswer(path, entry, accept);
    const gzip = readWholeSync(store.pathOf(entry.sha256, 'gzip'));
    if (typeof gzip === 'string' || gzip === undefined) return 'unreadable';
    let raw: Buffer;
    try {
      raw = gunzipSync(gzip, { maxOutputLength: entry.size + 1, chunkSize: zlibChunkFor(entry.size + 1) });
    } catch {
      return 'unreadable';
    }
    if (raw.length !== entry.size) return 'unreadable';
    counts.cacheMisses++;
    hotCache.set(entry.sha256, 'identity', raw);
    return okAnswer(path, entry, 'identity', raw.length, raw);
  }

  function getAnswer(path: string, entry: IndexEntry, accept: string | undefined): RepositoryAnswer | 'unreadable' {
    const known = variantSizes.known(entry.sha256);
    for (const encoding of acceptedEncodings(accept)) {
      if (known !== undefined) {
        // Variants whose absence is known are skipped; unknown ones are tried on disk (ENOENT = absent).
        const size = known.sizes[encoding];
        if (size === undefined && encoding !== 'identity') continue;
        if (size !== undefined && size > MAX_SYNC_READ_BYTES) return streamedAnswer(path, entry, accept);
      }
      const cached = hotCache.get(entry.sha256, encoding);
      if (cached !== undefined) {
        counts.cacheHits++;
        return okAnswer(path, entry, encoding, cached.length, cached);
      }
      const read = readWholeSync(store.pathOf(entry.sha256, encoding), allocateForCache);
      if (read === 'absent') {
        if (encoding === 'identity') return decodedAnswer(path, entry, accept);
        // Learn which variants exist (one stat each), so later requests skip the missing one.
        variantSizes.loadSync(entry);
        continue;
      }
      if (read === undefined) return streamedAnswer(path, entry, accept);
      if (encoding === 'identity' && read.length !== entry.size) return 'unreadable';
      counts.cacheMisses++;
      hotCache.set(entry.sha256, encoding, read);
      return okAnswer(path, entry, encoding, read.length, read);
    }
    return 'unreadable';
  }

  /** Reads straight into the hot cache's room when it takes a body that large. */
  function allocateForCache(size: number): Buffer {
    return hotCache.reserve(size) ?? Buffer.allocUnsafe(size);
  }

  function answer(request: AnswerRequest): RepositoryAnswer | 'absent' | 'unreadable' {
    const path = request.path;
    // The daemons' own routes come first: an entry at such a path is never repository content.
    if (isReservedPath(path)) return 'absent';
    const entry = index.lookup(path);
    if (entry === undefined || !isRepoPath(path)) return 'absent';
    if (
      (request.ifNoneMatch !== undefined || request.ifModifiedSince !== undefined) &&
      isNotModified(
        { 'if-none-match': request.ifNoneMatch, 'if-modified-since': request.ifModifiedSince },
        { etag: etagFor(entry.sha256), lastModifiedMs: entry.mtime },
      )
    )
      return notModifiedAnswer(path, entry);
    if (request.method === 'HEAD') {
      const sizes = variantSizes.known(entry.sha256) ?? variantSizes.loadSync(entry);
      if (sizes === undefined) return 'unreadable';
      const encoding = chooseEncoding(request.acceptEncoding, sizes.available);
      return okAnswer(path, entry, encoding, sizes.sizes[encoding] ?? entry.size, undefined);
    }
    return getAnswer(path, entry, request.acceptEncoding);
  }

  return { answer, counts: () => counts };
}
