import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  HEADERS,
  cacheControlFor,
  chooseEncoding,
  contentTypeFor,
  etagFor,
  formatHttpDate,
  isMetasyncError,
  isNotModified,
  isReservedPath,
  repoPathFromUrl,
  type ContentEncoding,
} from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import { VARIANT_SUFFIX, type ObjectStore, type Variant } from '@metasync/store';
import type { HotCache } from './hot-cache.js';
import type { IndexState } from '../index/index-state.js';
import type { MirrorMetrics } from '../metrics.js';
import type { VariantSizes } from './variant-sizes.js';
import type { Proxy } from './proxy.js';

/**
 * GET/HEAD of any repository path. The entry is resolved ONCE, synchronously,
 * at the start: everything after (headers, body) comes from that immutable
 * object, so a response is all generation N or all N+1 (invariant 3), and the
 * object stays on disk for the grace window even if N+1 dropped it (invariant 6).
 *
 * Paths absent from the index go to the proxy fallback (invariant 5). Invalid
 * paths are refused before anything is read or fetched.
 */
export interface RepositoryRouteOptions {
  index: IndexState;
  store: ObjectStore;
  hotCache: HotCache;
  metrics: MirrorMetrics;
  proxy: Proxy;
  variantSizes: VariantSizes;
  logger: Logger;
}

export function createRepositoryHandler(options: RepositoryRouteOptions) {
  const { index, store, hotCache, metrics, proxy, variantSizes } = options;

  return async function serveRepository(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    let path: string;
    try {
      path = repoPathFromUrl(request.raw.url ?? '');
    } catch (err) {
      if (!isMetasyncError(err, 'METASYNC_ERR_PATH_INVALID')) throw err;
      metrics.responses.inc({ source: 'refused', status: '400' });
      await reply.code(400).header('cache-control', 'no-store').send({ code: err.code, message: err.message });
      return;
    }
    const seq = index.seq;
    const entry = index.paths.get(path);
    if (entry === undefined) {
      // The primary's own APIs live beside the repository: never reach them through the proxy.
      if (isReservedPath(path)) {
        metrics.notFound.inc();
        metrics.responses.inc({ source: 'refused', status: '404' });
        await reply
          .code(404)
          .header('cache-control', 'no-store')
          .send({ code: 'METASYNC_ERR_PATH_NOT_FOUND', message: 'no such path in the repository' });
        return;
      }
      await proxy.forward({ path, query: safeQuery(request.raw.url ?? ''), request, reply, seq });
      return;
    }
    const etag = etagFor(entry.sha256);
    reply
      .header('etag', etag)
      .header('last-modified', formatHttpDate(entry.mtime))
      .header('cache-control', cacheControlFor(path))
      .header('vary', 'Accept-Encoding')
      .header(HEADERS.seq, String(seq));
    if (isNotModified(request.headers, { etag, lastModifiedMs: entry.mtime })) {
      metrics.responses.inc({ source: 'store', status: '304' });
      await reply.code(304).send();
      return;
    }
    const { sizes, available } = await variantSizes.load(entry);
    const encoding: ContentEncoding = chooseEncoding(request.headers['accept-encoding'], available);
    const variant: Variant = encoding;
    const length = sizes[variant] ?? entry.size;
    reply.header('content-type', contentTypeFor(path)).header('content-length', length);
    if (encoding !== 'identity') reply.header('content-encoding', encoding);
    metrics.responses.inc({ source: 'store', status: '200' });
    if (request.method === 'HEAD') {
      await reply.send();
      return;
    }
    const key = entry.sha256 + VARIANT_SUFFIX[variant];
    const cached = hotCache.get(key);
    if (cached !== undefined) {
      metrics.cacheHits.inc();
      await reply.send(cached);
      return;
    }
    metrics.cacheMisses.inc();
    const file = store.pathOf(entry.sha256, variant);
    if (hotCache.admits(length)) {
      const body = await readFile(file);
      hotCache.set(key, body);
      await reply.send(body);
      return;
    }
    await reply.send(createReadStream(file));
  };
}

/**
 * The query string passed on to the primary (Packagist's `metadata/changes.json?since=T`
 * needs it): only plain `key=value` pairs of URL-safe characters, else none.
 */
export function safeQuery(url: string): string {
  const at = url.indexOf('?');
  if (at === -1) return '';
  const query = url.slice(at + 1);
  return query.length <= 200 && /^[A-Za-z0-9_.~-]+=[A-Za-z0-9_.~-]*(&[A-Za-z0-9_.~-]+=[A-Za-z0-9_.~-]*)*$/.test(query) ? query : '';
}
