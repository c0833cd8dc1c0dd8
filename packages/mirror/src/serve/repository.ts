import { createReadStream } from 'node:fs';
import { pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isMetasyncError, isReservedPath, repoPathFromUrl } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import type { IndexView } from '../index/index-state.js';
import type { MirrorMetrics } from '../metrics.js';
import type { Proxy } from './proxy.js';
import type { RepositoryAnswers } from './repository-answer.js';

/**
 * GET/HEAD of any repository path the fast path did not answer (odd URLs,
 * repeated headers, large bodies, paths absent from the index). The answer
 * comes from the same function as the fast path's (repository-answer.ts):
 * the entry is resolved ONCE, synchronously, so a response is all generation
 * N or all N+1 (invariant 3), and a streamed object stays on disk for the
 * grace window even if N+1 dropped it (invariant 6).
 *
 * Invalid paths are refused before anything is read or fetched; reserved
 * paths (the daemons' own APIs) are 404 whatever the index holds; paths
 * absent from the index go to the proxy fallback (invariant 5).
 */
export interface RepositoryRouteOptions {
  index: IndexView;
  answers: RepositoryAnswers;
  metrics: MirrorMetrics;
  proxy: Proxy;
  logger: Logger;
}

const NOT_FOUND = { code: 'METASYNC_ERR_PATH_NOT_FOUND', message: 'no such path in the repository' } as const;

export function createRepositoryHandler(options: RepositoryRouteOptions) {
  const { index, answers, metrics, proxy, logger } = options;

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
    // The daemons' own APIs: never repository content (whatever the index holds), never proxied.
    if (isReservedPath(path)) {
      metrics.notFound.inc();
      metrics.responses.inc({ source: 'refused', status: '404' });
      await reply.code(404).header('cache-control', 'no-store').send(NOT_FOUND);
      return;
    }
    const seq = index.seq;
    const headers = request.headers;
    const answered = answers.answer({
      method: request.method === 'HEAD' ? 'HEAD' : 'GET',
      path,
      acceptEncoding: headers['accept-encoding'],
      ifNoneMatch: headers['if-none-match'],
      ifModifiedSince: headers['if-modified-since'],
    });
    if (answered === 'absent') {
      await proxy.forward({ path, query: safeQuery(request.raw.url ?? ''), request, reply, seq });
      return;
    }
    if (answered === 'unreadable') {
      // A repository path must never see a 5xx (Composer aborts on it): report "not found now".
      logger.error({ path }, 'object in the index is unreadable');
      metrics.notFound.inc();
      await reply.code(404).header('cache-control', 'no-store').send(NOT_FOUND);
      return;
    }
    const list = answered.headers;
    reply.code(answered.status);
    for (let i = 0; i < list.length; i += 2) reply.header(String(list[i]), list[i + 1]);
    if (answered.file !== undefined) {
      // A file (or its decoding) that changed on disk since it was verified must not write past its
      // Content-Length (bytes the next response on a kept-alive connection would start with): Node errors
      // on a mismatch, and the response is cut off.
      reply.raw.strictContentLength = true;
      const stream = createReadStream(answered.file);
      await reply.send(answered.fileIsGzip ? decoded(stream) : stream);
    } else await reply.send(answered.body);
  };
}

/** A gzip file's decoding, as a stream that fails (and so aborts the response) when the file or the decoding does. */
function decoded(file: Readable): Readable {
  const gunzip = createGunzip();
  // pipeline destroys the decoder with the file's error; the reply sees it on the stream it sends.
  pipeline(file, gunzip, () => undefined);
  return gunzip;
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
