import {
  HEADERS,
  PROXY_ANSWER_HEADERS,
  cacheControlFor,
  contentTypeFor,
  etagFor,
  formatHttpDate,
  isNotModified,
  isReservedPath,
  metasyncError,
  repoPathFromUrl,
} from '@metasync/shared';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { KeyRing } from '../keys/key-ring.js';
import type { PrimaryPublisher } from '../publish/publisher.js';
import { acceptedVariants } from './accepted-variants.js';
import { createAnswerSignatures, type AnswerSignatures } from './answer-signatures.js';

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
 *
 * Every 200 (GET and HEAD) carries the active key's signature over (path,
 * sha256, head seq, mtime) in the headers of shared proxy-answer.ts, whatever
 * encoding the body is sent in: a mirror's proxy fallback serves a body only
 * when it verifies. The entry and the manifest's seq are read in the same
 * synchronous step, so the seq signed is a generation the entry was current in.
 */
export function repositoryRoutes(
  app: FastifyInstance,
  options: { publisher: PrimaryPublisher; keyRing: Pick<KeyRing, 'active'>; signatures?: AnswerSignatures },
): void {
  const { publisher, keyRing } = options;
  const signatures = options.signatures ?? createAnswerSignatures();

  const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const path = repoPathFromUrl(request.raw.url ?? '/');
    const entry = isReservedPath(path) ? undefined : publisher.getEntry(path);
    const seq = publisher.manifestSeq();
    void reply.header(HEADERS.seq, String(seq));
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
    const fields = { path, sha256: entry.sha256, seq, mtime: entry.mtime };
    void reply
      .header(PROXY_ANSWER_HEADERS.path, path)
      .header(PROXY_ANSWER_HEADERS.sha256, entry.sha256)
      .header(PROXY_ANSWER_HEADERS.mtime, String(entry.mtime))
      .header(HEADERS.signature, signatures.signatureFor(keyRing.active(), fields));
    const { variant, bytes } = await publisher.store.readPreferred(entry.sha256, acceptedVariants(request.headers['accept-encoding']));
    if (variant !== 'identity') void reply.header('content-encoding', variant);
    return reply.send(bytes);
  };

  app.get('/*', handler);
}
