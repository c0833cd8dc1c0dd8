import { metasyncError } from '@metasync/shared';
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import { DEFAULT_KEY_OVERLAP_MS, type KeyRing } from '../keys/key-ring.js';

/**
 * POST /admin/keys/rotate  {"overlapMs"?: n}  -> {version, active, retired}
 *
 * Rotates the signing key of the running primary: the new key signs from this
 * answer on; the old one stays listed (and able to endorse the key set for
 * mirrors, GET /sync/v1/keys?signer=) until now + overlapMs, default 24 h.
 * Registered by routes/admin.ts with its authentication and rate limit.
 */
export interface KeyRotationRouteOptions {
  keyRing: Pick<KeyRing, 'rotate'>;
  /** The admin routes' hooks (identify the caller, rate limit). */
  onRequest: onRequestHookHandler[];
  /** Throws unless the caller may make admin calls. */
  authorize: (request: FastifyRequest) => void;
}

export function keyRotationRoute(app: FastifyInstance, options: KeyRotationRouteOptions): void {
  app.post('/admin/keys/rotate', { onRequest: options.onRequest }, async (request, reply) => {
    options.authorize(request);
    const result = await options.keyRing.rotate({ overlapMs: parseOverlapMs(request.body) });
    request.log.info({ keyId: result.active.keyId, version: result.version }, 'signing key rotated by admin call');
    return reply.header('cache-control', 'no-store').send(result);
  });
}

function parseOverlapMs(body: unknown): number {
  if (body === undefined || body === null || body === '') return DEFAULT_KEY_OVERLAP_MS;
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw metasyncError('METASYNC_ERR_REQUEST_INVALID', 'key rotation body must be a JSON object like {"overlapMs": 86400000}', {
      field: 'body',
      rule: 'object',
    });
  }
  const value = (body as Record<string, unknown>).overlapMs;
  if (value === undefined) return DEFAULT_KEY_OVERLAP_MS;
  if (typeof value !== 'number') {
    throw metasyncError(
      'METASYNC_ERR_REQUEST_INVALID',
      `overlapMs must be a number of milliseconds, got ${JSON.stringify(value)?.slice(0, 40) ?? 'undefined'}`,
      { field: 'overlapMs', rule: 'integer ms' },
    );
  }
  return value;
}
