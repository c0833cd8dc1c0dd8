/**
 * Per-route rate limits (@fastify/rate-limit, in-memory fixed windows) for the
 * daemons' publish and admin routes. Nothing is limited globally: a route opts in
 * with the hook `rateLimitHook` builds, so serving, sync and metrics routes never
 * see a 429. Callers choose the key (a token id, the client address...).
 *
 *   registerRateLimiting(app)  ->  rateLimitHook(app, { scope, settings, key })  ->  route { onRequest: hook }
 */
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import { metasyncError } from '../errors.js';

export interface RateLimitSettings {
  /** Requests per window per key; 0 turns the limit off. */
  max: number;
  windowMs: number;
}

/** Registers the plugin without a global limit (routes opt in through `rateLimitHook`). Idempotent per app. */
export async function registerRateLimiting(app: FastifyInstance): Promise<void> {
  if (app.hasDecorator('rateLimit')) return;
  await app.register(rateLimit, { global: false, cache: 10_000 });
}

/** `ip:<address>`; IPv6 clients are keyed by their /64, as one host usually owns a whole one. */
export function clientAddressKey(request: FastifyRequest): string {
  return `ip:${normalizeIP(request.ip, 64)}`;
}

/**
 * An onRequest hook answering 429 METASYNC_ERR_RATE_LIMITED with Retry-After once
 * `key(request)` used up its budget in the current window; undefined when max is 0.
 * Buckets are `<scope>:<key>`, so two scopes never share a budget. Needs
 * `registerRateLimiting` on this app or a parent first.
 */
export function rateLimitHook(
  app: FastifyInstance,
  options: { scope: string; settings: RateLimitSettings; key: (request: FastifyRequest) => string },
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
  // The plugin types the hook for its own route generics; it is a plain onRequest hook.
  return hook as unknown as onRequestHookHandler;
}
