import type { HttpServerLimits } from '@metasync/shared/daemon';

/**
 * Defaults for what the primary tolerates from its clients (flags in config.ts,
 * mechanics in shared http-limits.ts). Its clients are mirrors (a pooled
 * undici client each, plus one event stream), publishers calling the publish
 * API with bodies up to --max-body-bytes, and the odd Composer client.
 */
export const PRIMARY_HTTP_LIMITS: HttpServerLimits = {
  // Every legitimate client sends its headers in one segment.
  headersTimeoutMs: 10_000,
  // The whole request, body included: an 8 MiB publish body over a 1 Mbit/s CI uplink takes ~70 s.
  // Responses are not bounded by it (event streams and snapshot downloads last as long as they need).
  requestTimeoutMs: 120_000,
  // Fastify's default, kept: longer than the 60 s idle timeout of common load balancers, so a
  // balancer in front never reuses a connection the primary has just closed.
  keepAliveTimeoutMs: 72_000,
  // Node's default; bearer tokens and mirror ids are far smaller.
  maxHeaderBytes: 16 * 1024,
  // A few connections per mirror and per publisher; thousands means someone is hostile.
  maxConnections: 4_096,
  maxRequestsPerSocket: 0,
  // Bounds a client that stops reading a response. Far above the event stream's heartbeat
  // (--heartbeat-ms, 15 s), the only response that is quiet by design.
  socketTimeoutMs: 300_000,
  // No client of the primary pipelines (undici's pools send one request at a time per connection).
  maxPipelinedRequests: 16,
  // HTTP/2 (with TLS): mirrors speak HTTP/1.1 through undici pools; 100 is RFC 9113's recommended floor.
  maxConcurrentStreams: 100,
};
