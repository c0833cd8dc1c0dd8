/**
 * Rate limits on the publish API and the admin routes: the primary's budgets and
 * its refusal counter. The limiter itself (plugin, hook, 429 answer, client-address
 * key) is `@metasync/shared/http`. Repository, sync and metrics routes are not limited:
 * mirrors and Composer clients must never see a 429 from here.
 *
 * The key is the token id once the bearer token is known to be valid, else the
 * client address: a flood of made-up tokens cannot mint fresh buckets, and one
 * busy CI token does not use up another's budget behind the same NAT.
 *
 *   onRequest: identify token (no answer yet) -> limiter (429 + Retry-After) -> preParsing: 401/403
 */
import type { RateLimitSettings } from '@metasync/shared/http';
import type { onResponseHookHandler } from 'fastify';
import { Counter, type Registry } from 'prom-client';

export interface RateLimitConfig {
  publish: RateLimitSettings;
  admin: RateLimitSettings;
}

export const DEFAULT_RATE_LIMITS: RateLimitConfig = {
  publish: { max: 6000, windowMs: 60_000 },
  admin: { max: 60, windowMs: 60_000 },
};

/** Counts refused publish/admin calls by scope and status, so a flood or a stolen-token probe shows on /metrics. */
export type RefusalCounter = (scope: 'publish' | 'admin') => onResponseHookHandler;

export function createRefusalCounter(registry: Registry): RefusalCounter {
  const refused = new Counter({
    name: 'metasync_api_refused_total',
    help: 'publish and admin calls refused: 401 (no, unknown or revoked token), 403 (outside the token scope), 429 (rate limited)',
    labelNames: ['scope', 'status'],
    registers: [registry],
  });
  return (scope) =>
    async (_request, reply): Promise<void> => {
      const status = reply.statusCode;
      if (status === 401 || status === 403 || status === 429) refused.inc({ scope, status: String(status) });
    };
}
