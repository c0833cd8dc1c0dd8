import type { OutgoingHttpHeader } from 'node:http';
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
} from '@metasync/shared';
import { VARIANT_SUFFIX, type ObjectStore, type Variant } from '@metasync/store';
import type { HotCache } from './hot-cache.js';
import type { IndexEntry, IndexState } from '../index/index-state.js';
import { createBoundedMemo } from './bounded-memo.js';
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
 *            (<= 1 MiB, sync: open, fstat, read, close), else `file` to stream
 *   a stat or read failing ──> 'unreadable' (the route answers 404, never 5xx)
 *
 * Allocation-light: headers are built once per entry, encoding and seq, and
 * the answer objects themselves are memoised beside them, so a hot hit
 * allocates nothing here. Answers are shared: callers must not modify them.
 * Why synchronous reads: for a page-cached object of a few KiB open+read+close
 * costs a few microseconds; four thread-pool round trips and promises cost ten
 * times that in CPU (nginx also reads with blocking calls in its worker).
 */
export interface RepositoryAnswerOptions {
  index: IndexState;
  store: ObjectStore;
  hotCache: HotCache;
  variantSizes: VariantSizes;
}

export interface AnswerRequest extends AnswerHeaders {
  method: 'GET' | 'HEAD';
  /** A valid repository path, without the leading slash. */
  path: string;
}

/** A response's header list ([name, value, ...]), built once per entry, encoding and seq. */
export interface BuiltHeaders {
  seq: number;
  length: number;
  list: OutgoingHttpHeader[];
}

export interface RepositoryAnswer {
  readonly status: 200 | 304;
  readonly headers: BuiltHeaders;
  /** Undefined for a 304. */
  readonly variant: Variant | undefined;
  /** The whole body; undefined for HEAD, 304, or when `file` is to be streamed. */
  readonly body: Buffer | undefined;
  /** A GET whose body is too large to read here: stream this file. */
  readonly file: string | undefined;
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
  /** Paths whose headers are held prebuilt now. */
  prebuiltPaths(): number;
}

const MAX_ACCEPT_CHOICES = 256;
/**
 * Prebuilt answers are kept for about this many to twice this many paths. One
 * path's set costs ~1-2 KB of heap; kept for every path ever requested it grew
 * a 100k-path mirror by ~250 MB under a long-tail load (bench mirror-rss).
 */
const RESPONSE_MEMO_GENERATION = 8_192;

/** What the answers for one path's current index entry share, rebuilt when the path gets a new entry. */
interface EntryAnswers {
  entry: IndexEntry;
  servable: boolean;
  /** `<store>/ab/<rest>`: a variant's file is this plus its suffix. */
  file: string;
  etag: string;
  /** etag, last-modified, cache-control, vary (the headers of a 304). */
  validators: OutgoingHttpHeader[];
  contentType: string;
  ok: Partial<Record<ContentEncoding, BuiltHeaders>>;
  /** The last GET answer per encoding (reused while its headers and body are the same). */
  got: Partial<Record<ContentEncoding, RepositoryAnswer>>;
  headed: Partial<Record<ContentEncoding, RepositoryAnswer>>;
  notModified?: RepositoryAnswer;
}

export function createRepositoryAnswers(options: RepositoryAnswerOptions): RepositoryAnswers {
  const { index, store, hotCache, variantSizes } = options;
  // Keyed by path: keyed by entry, every republish left the old entry's answers in the memo.
  const memo = createBoundedMemo<string, EntryAnswers>(RESPONSE_MEMO_GENERATION);
  /** Accept-Encoding value -> the encodings it takes, best first (always ending in identity). */
  const acceptChoices = new Map<string, readonly ContentEncoding[]>();
  const counts: AnswerCounts = { ok: 0, notModified: 0, cacheHits: 0, cacheMisses: 0 };

  function answersOf(path: string, entry: IndexEntry): EntryAnswers {
    let found = memo.get(path);
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
        got: {},
        headed: {},
      };
      memo.set(path, found);
    }
    return found;
  }

  function okHeaders(found: EntryAnswers, encoding: ContentEncoding, length: number): BuiltHeaders {
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

  function okAnswer(found: EntryAnswers, encoding: ContentEncoding, length: number, body: Buffer | undefined): RepositoryAnswer {
    const headers = okHeaders(found, encoding, length);
    const held = body === undefined ? found.headed : found.got;
    let answer = held[encoding];
    if (answer === undefined || answer.headers !== headers || answer.body !== body) {
      answer = { status: 200, headers, variant: encoding, body, file: undefined };
      held[encoding] = answer;
    }
    counts.ok++;
    return answer;
  }

  function notModifiedAnswer(found: EntryAnswers): RepositoryAnswer {
    if (found.notModified === undefined || found.notModified.headers.seq !== index.seq) {
      const headers = { seq: index.seq, length: 0, list: [...found.validators, HEADERS.seq, String(index.seq)] };
      found.notModified = { status: 304, headers, variant: undefined, body: undefined, file: undefined };
    }
    counts.notModified++;
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

  /** A body too large to read here (or a variant known to be): the route streams the file. */
  function streamedAnswer(found: EntryAnswers, accept: string | undefined): RepositoryAnswer | 'unreadable' {
    const entry = found.entry;
    const sizes = variantSizes.known(entry.sha256) ?? variantSizes.loadSync(entry);
    if (sizes === undefined) return 'unreadable';
    const encoding = chooseEncoding(accept, sizes.available);
    const headers = okHeaders(found, encoding, sizes.sizes[encoding] ?? entry.size);
    counts.ok++;
    return { status: 200, headers, variant: encoding, body: undefined, file: found.file + VARIANT_SUFFIX[encoding] };
  }

  function getAnswer(found: EntryAnswers, accept: string | undefined): RepositoryAnswer | 'unreadable' {
    const entry = found.entry;
    const known = variantSizes.known(entry.sha256);
    for (const encoding of acceptedEncodings(accept)) {
      let size: number | undefined;
      if (known !== undefined) {
        // Variants whose absence is known are skipped; unknown ones are tried on disk (ENOENT = absent).
        size = known.sizes[encoding];
        if (size === undefined && encoding !== 'identity') continue;
        if (size !== undefined && size > MAX_SYNC_READ_BYTES) return streamedAnswer(found, accept);
      }
      const key = entry.sha256 + VARIANT_SUFFIX[encoding];
      const cached = hotCache.get(key);
      if (cached !== undefined) {
        counts.cacheHits++;
        return okAnswer(found, encoding, cached.length, cached);
      }
      const read = readWholeSync(found.file + VARIANT_SUFFIX[encoding]);
      if (read === 'absent') {
        if (encoding === 'identity') return 'unreadable';
        // Learn which variants exist (one stat each), so later requests skip the missing one.
        variantSizes.loadSync(entry);
        continue;
      }
      if (read === undefined) return streamedAnswer(found, accept);
      if (encoding === 'identity' && read.length !== entry.size) return 'unreadable';
      counts.cacheMisses++;
      if (hotCache.admits(read.length)) hotCache.set(key, read);
      return okAnswer(found, encoding, read.length, read);
    }
    return 'unreadable';
  }

  function answer(request: AnswerRequest): RepositoryAnswer | 'absent' | 'unreadable' {
    const path = request.path;
    // The daemons' own routes come first: an entry at such a path is never repository content.
    if (isReservedPath(path)) return 'absent';
    const entry = index.paths.get(path);
    if (entry === undefined) return 'absent';
    const found = answersOf(path, entry);
    if (!found.servable) return 'absent';
    if (
      (request.ifNoneMatch !== undefined || request.ifModifiedSince !== undefined) &&
      isNotModified(
        { 'if-none-match': request.ifNoneMatch, 'if-modified-since': request.ifModifiedSince },
        { etag: found.etag, lastModifiedMs: entry.mtime },
      )
    )
      return notModifiedAnswer(found);
    if (request.method === 'HEAD') {
      const sizes = variantSizes.known(entry.sha256) ?? variantSizes.loadSync(entry);
      if (sizes === undefined) return 'unreadable';
      const encoding = chooseEncoding(request.acceptEncoding, sizes.available);
      return okAnswer(found, encoding, sizes.sizes[encoding] ?? entry.size, undefined);
    }
    return getAnswer(found, request.acceptEncoding);
  }

  return { answer, counts: () => counts, prebuiltPaths: () => memo.size() };
}
