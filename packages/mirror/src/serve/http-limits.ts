import type { HttpServerLimits } from '@metasync/shared/daemon';

/**
 * Defaults for what the mirror tolerates from its clients (flags in config.ts,
 * mechanics in shared http-limits.ts). Its clients are Composer runs: up to 12
 * parallel keep-alive connections each, sending a few hundred bytes of headers
 * in one packet and never a body. None of these limits comes near that:
 */
export const MIRROR_HTTP_LIMITS: HttpServerLimits = {
  // Composer's headers arrive in one segment; 10 s is long enough for a lossy mobile link and
  // short enough that a slowloris socket is gone before it matters.
  headersTimeoutMs: 10_000,
  // GET/HEAD have no body, so this only backs up the headers timeout (and bounds POST /admin/drain).
  requestTimeoutMs: 30_000,
  // Composer reuses its connections within one run, where gaps are sub-second: holding an idle
  // socket longer than 10 s buys nothing.
  keepAliveTimeoutMs: 10_000,
  // Node's default. Composer sends under 1 KiB (even with an Authorization header).
  maxHeaderBytes: 16 * 1024,
  // An idle connection costs the mirror ~3 KiB (10,000 measured: +31 MB RSS): 10,000 is ~830
  // Composer runs at 12 connections each, and well below the 65,536 open files the unit allows.
  maxConnections: 10_000,
  // A Composer run makes hundreds of requests on one connection; closing it early only costs handshakes.
  maxRequestsPerSocket: 0,
  // Bounds a client that stops reading a response. Long, because POST /admin/drain answers only
  // once the DNS withdrawal is live plus one TTL, with no byte sent meanwhile.
  socketTimeoutMs: 300_000,
  // Composer (curl) never pipelines; a few in flight would be harmless, hundreds are an attack.
  maxPipelinedRequests: 16,
  // HTTP/2 (with TLS): Composer multiplexes at most 12 requests per run on one connection; 100 is
  // RFC 9113's recommended floor and what browsers expect. Answers are prebuilt shared buffers and
  // HTTP/2 flow control holds back a client that does not read, so 100 open streams cost little.
  maxConcurrentStreams: 100,
};
