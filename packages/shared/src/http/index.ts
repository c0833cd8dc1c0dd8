/**
 * `@metasync/shared/http`: bearer-token authentication and rate limiting for the
 * daemons' fastify routes. Helpers, not contract. Not re-exported from the root
 * entry: it loads fastify and @fastify/rate-limit, which the protocol does not need.
 */
export * from './bearer-token.js';
export * from './rate-limit.js';
