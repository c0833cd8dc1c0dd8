import { metasyncError } from '@metasync/shared';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { KeyRing } from '../key-ring.js';
import type { SnapshotScheduler } from '../snapshot-scheduler.js';
import { keyRotationRoute } from './key-rotation.js';
import { createTokenCheck } from './publish-api.js';

/**
 * Admin calls, authenticated with the publish token (bearer, constant-time):
 *
 *   POST /admin/snapshot   write a signed snapshot file of the head now -> {seq}
 *   POST /admin/keys/rotate  rotate the signing key with an overlap (key-rotation.ts)
 */
export function adminRoutes(app: FastifyInstance, options: { snapshots: SnapshotScheduler; keyRing: Pick<KeyRing, 'rotate'>; tokens: readonly string[] }): void {
  const isValidToken = createTokenCheck(options.tokens);

  function authenticate(request: FastifyRequest): void {
    const header = request.headers.authorization;
    if (header === undefined || header === '') {
      throw metasyncError('METASYNC_ERR_AUTH_MISSING', `${request.method} ${request.url} needs Authorization: Bearer <token>`, { field: 'authorization', rule: 'bearer-token' });
    }
    const match = /^Bearer +(\S+) *$/i.exec(header);
    if (match?.[1] === undefined || !isValidToken(match[1])) {
      throw metasyncError('METASYNC_ERR_AUTH_INVALID', `${request.method} ${request.url}: the bearer token is not valid`, { field: 'authorization', rule: 'bearer-token' });
    }
  }

  app.post('/admin/snapshot', async (request, reply) => {
    authenticate(request);
    const { seq } = await options.snapshots.take();
    return reply.header('cache-control', 'no-store').send({ seq });
  });
  keyRotationRoute(app, { keyRing: options.keyRing, onRequest: [], authorize: authenticate });
}
