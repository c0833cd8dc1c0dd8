/**
 * Rate limits on the publish API and the admin routes (@fastify/rate-limit,
 * in-memory fixed windows). Repository, sync and metrics routes are not limited:
 * mirrors and Composer clients must never see a 429 from here.
 *
 * The key is the token id once the bearer token is known to be valid, else the
 * client address: a flood of made-up tokens cannot mint fresh buckets, and one
 * busy CI token does not use up another's budget behind the same NAT.
 *
 *   onRequest: identify token (no answer yet) -> limiter (429 + Retry-After) -> preParsing: 401/403
 */
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest, onRequestHookHandler, onResponseHookHandler } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { metasyncError } from '@metasync/shared';

export interface RateLimitSettings {
  /** Requests per window per token (or per client address); 0 turns the limit off. */
  max: number;
  windowMs: number;
}

export interface RateLimitConfig {
  publish: RateLimitSettings;
  admin: RateLimitSettings;
}

export const DEFAULT_RATE_LIMITS: RateLimitConfig = {
  publish: { max: 6000, windowMs: 60_000 },
  admin: { max: 60, windowMs: 60_000 },
};

/** Registers the plugin without a global limit (routes opt in through `rateLimitHook`). Idempotent per app. */
export async function registerRateLimiting(app: FastifyInstance): Promise<void> {
  if (app.hasDecorator('rateLimit')) return;
  await app.register(rateLimit, { global: false, cache: 10_000 });
}

/** IPv6 clients are keyed by their /64, as one host usually owns a whole one. */
export function clientAddressKey(request: FastifyRequest): string {
  return `ip:${normalizeIP(request.ip, 64)}`;
}

/**
 * An onRequest hook answering 429 METASYNC_ERR_RATE_LIMITED with Retry-After once
 * `key(request)` used up its budget in the current window; undefined when max is 0.
 */
export function rateLimitHook(
  app: FastifyInstance,
  options: { scope: 'publish' | 'admin'; settings: RateLimitSettings; key: (request: FastifyRequest) => string },
): onRequestHookHandler | undefined {
  const { max, windowMs } = options.settings;
  if (max <= 0) return undefined;
  const hook = app.rateLimit({
    max,
    timeWindow: windowMs,
    keyGenerator: (request) => `${options.scope}:${options.key(request)}`,
    errorResponseBuilder: (request, context) => {
      const retryAfterS = Math.max(1, Math.ceil(context.ttl / 1000));
      return metasyncError(
        'METASYNC_ERR_RATE_LIMITED',
        `${request.method} ${request.url}: more than ${max} ${options.scope} requests in ${windowMs} ms from ${options.key(request)}; retry in ${retryAfterS} s`,
        { field: 'rate', rule: `${options.scope}-rate-limit`, limit: max, windowMs, retryAfterS },
      );
    },
  });
  return hook as unknown as onRequestHookHandler;
}

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
