import {
  HEADERS,
  cacheControlFor,
  chooseEncoding,
  contentTypeFor,
  etagFor,
  formatHttpDate,
  isNotModified,
  isReservedPath,
  metasyncError,
  repoPathFromUrl,
} from '@metasync/shared';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { PrimaryPublisher } from '../publish/publisher.js';

/**
 * GET/HEAD `/<repository path>`: the head generation's files, as Composer wants
 * them. The path is validated (shared repoPathFromUrl) before anything is
 * looked up, and only the manifest decides what exists: a request can name a
 * manifest path or nothing, so no request reaches the filesystem by its own
 * path. Answers use the shared http-cache helpers, identical to the mirror's.
 * A reserved path (a daemon route, shared isReservedPath) is never looked up:
 * the route itself matched before this catch-all, and what reaches here under
 * a reserved name (`/health/fresh` on the primary, which has no such route) is
 * a 404, even when data of an older version still lists it.
 */
export function repositoryRoutes(app: FastifyInstance, options: { publisher: PrimaryPublisher }): void {
  const { publisher } = options;

  const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const path = repoPathFromUrl(request.raw.url ?? '/');
    const entry = isReservedPath(path) ? undefined : publisher.getEntry(path);
    void reply.header(HEADERS.seq, String(publisher.headSeq()));
    if (entry === undefined) {
      const error = metasyncError('METASYNC_ERR_PATH_NOT_FOUND', `no path ${path} in the repository`, { path });
      return reply.code(404).header('cache-control', 'no-store').send({ code: error.code, message: error.message, path });
    }
    const etag = etagFor(entry.sha256);
    void reply
      .header('etag', etag)
      .header('last-modified', formatHttpDate(entry.mtime))
      .header('cache-control', cacheControlFor(path))
      .header('vary', 'accept-encoding')
      .header('content-type', contentTypeFor(path));
    if (isNotModified(request.headers, { etag, lastModifiedMs: entry.mtime })) return reply.code(304).send();
    const wanted = chooseEncoding(request.headers['accept-encoding'], ['br', 'gzip']);
    // Small or incompressible objects keep no compressed variant: their raw bytes are the answer.
    const { variant, bytes } = await publisher.store.readPreferred(
      entry.sha256,
      wanted === 'identity' ? ['identity'] : [wanted, 'identity'],
    );
    if (variant !== 'identity') void reply.header('content-encoding', variant);
    return reply.send(bytes);
  };

  app.get('/*', handler);
}
