/**
 * Mirror enrollment through the admin API (what `metasync mirror up` and
 * `mirror retire` call; `metasync-primary mirror-credential` does the same on
 * the file directly). Registered by routes/admin.ts with its admin-token
 * authentication and rate limit.
 *
 *   POST   /admin/mirrors/<id>/credential  -> {mirrorId, credential, createdAt}   the secret, shown once
 *   DELETE /admin/mirrors/<id>/credential  -> {mirrorId, outcome}                 revoked | already-revoked | unknown
 *   GET    /admin/mirrors/credentials      -> {mirrors: [{mirrorId, sha256, revoked, ...}]}
 */
import { MIRROR_CREDENTIAL_ROUTES, MIRROR_ID_PATTERN, metasyncError } from '@metasync/shared';
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { MirrorCredentials } from '../mirrors/credential-store.js';

export interface MirrorCredentialRoutesOptions {
  credentials: MirrorCredentials;
  /** The admin routes' hooks (identify the caller, rate limit). */
  onRequest: onRequestHookHandler[];
  /** Throws unless the caller may make admin calls. */
  authorize: (request: FastifyRequest) => void;
}

// The route pattern, not MIRROR_CREDENTIAL_ROUTES.one(':mirrorId'), which would percent-encode the colon.
const ONE = '/admin/mirrors/:mirrorId/credential';

function mirrorIdOf(request: FastifyRequest): string {
  const { mirrorId } = request.params as { mirrorId: string };
  if (!MIRROR_ID_PATTERN.test(mirrorId)) {
    throw metasyncError(
      'METASYNC_ERR_REQUEST_INVALID',
      `mirror id ${JSON.stringify(mirrorId.slice(0, 80))} must be 1-64 of [A-Za-z0-9_.:-]`,
      {
        field: 'mirrorId',
        rule: MIRROR_ID_PATTERN.source,
      },
    );
  }
  return mirrorId;
}

export function mirrorCredentialRoutes(app: FastifyInstance, options: MirrorCredentialRoutesOptions): void {
  const { credentials, onRequest, authorize } = options;
  app.post(ONE, { onRequest }, async (request, reply) => {
    authorize(request);
    const mirrorId = mirrorIdOf(request);
    const { secret, entry } = await credentials.issue(mirrorId);
    request.log.info({ mirrorId }, 'mirror credential issued by admin call');
    return reply.header('cache-control', 'no-store').send({ mirrorId, credential: secret, createdAt: entry.createdAt });
  });
  app.delete(ONE, { onRequest }, async (request, reply) => {
    authorize(request);
    const mirrorId = mirrorIdOf(request);
    const outcome = await credentials.revoke(mirrorId);
    request.log.info({ mirrorId, outcome }, 'mirror credential revoked by admin call');
    return reply.header('cache-control', 'no-store').send({ mirrorId, outcome });
  });
  app.get(MIRROR_CREDENTIAL_ROUTES.list, { onRequest }, async (request, reply) => {
    authorize(request);
    return reply.header('cache-control', 'no-store').send({ mirrors: credentials.list() });
  });
}
