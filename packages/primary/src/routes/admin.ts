import type { FastifyInstance } from 'fastify';
import type { PublishAuth } from '../publish/auth.js';
import { rateLimitHook, registerRateLimiting, type RateLimitSettings } from '@metasync/shared/http';
import { DEFAULT_RATE_LIMITS, type RefusalCounter } from './rate-limits.js';
import type { SnapshotScheduler } from '../journal/snapshot-scheduler.js';
import type { KeyRing } from '../keys/key-ring.js';
import { callerKey, identifyHook, requireAdmin } from './bearer-auth.js';
import { keyRotationRoute } from './key-rotation.js';
import { mirrorCredentialRoutes } from './mirror-credentials.js';
import type { MirrorCredentials } from '../mirrors/credential-store.js';

/**
 * Admin calls, authenticated with an admin publish token (bearer, constant-time;
 * METASYNC_PUBLISH_TOKEN tokens and tokens-file entries with `"admin": true`),
 * rate limited per token (or client address):
 *
 *   POST /admin/snapshot   write a signed snapshot file of the head now -> {seq}
 *   POST /admin/keys/rotate  rotate the signing key with an overlap (key-rotation.ts)
 *   /admin/mirrors/...       enroll mirrors: issue, revoke, list credentials (mirror-credentials.ts)
 */
export async function adminRoutes(
  app: FastifyInstance,
  options: {
    snapshots: SnapshotScheduler;
    keyRing: Pick<KeyRing, 'rotate'>;
    auth: PublishAuth;
    mirrorCredentials: MirrorCredentials;
    rateLimit?: RateLimitSettings;
    refusals?: RefusalCounter;
  },
): Promise<void> {
  await registerRateLimiting(app);
  const limiter = rateLimitHook(app, { scope: 'admin', settings: options.rateLimit ?? DEFAULT_RATE_LIMITS.admin, key: callerKey });
  const onRequest = limiter === undefined ? [identifyHook(options.auth)] : [identifyHook(options.auth), limiter];
  // An encapsulated context, so the refusal counter sees only admin routes.
  await app.register(async (admin) => {
    if (options.refusals !== undefined) admin.addHook('onResponse', options.refusals('admin'));
    admin.post('/admin/snapshot', { onRequest }, async (request, reply) => {
      requireAdmin(request);
      const { seq } = await options.snapshots.take();
      return reply.header('cache-control', 'no-store').send({ seq });
    });
    keyRotationRoute(admin, { keyRing: options.keyRing, onRequest, authorize: requireAdmin });
    mirrorCredentialRoutes(admin, { credentials: options.mirrorCredentials, onRequest, authorize: requireAdmin });
  });
}
