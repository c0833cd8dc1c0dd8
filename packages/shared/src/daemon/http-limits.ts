import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import { z } from 'zod';
import type { OptionSpec } from './cli-options.js';
import type { Logger } from './logger.js';

/**
 * What a daemon's HTTP server tolerates from its clients (hostile or merely slow).
 * Node enforces all of them before a request reaches fastify:
 *
 *   accept ──> maxConnections reached? ──yes──> socket closed at once, no response ('drop')
 *     │
 *   headers ── not complete within headersTimeoutMs (slowloris) ──> 408, closed
 *     │        larger than maxHeaderBytes ──> 431, closed
 *   body ───── request not fully received within requestTimeoutMs ──> 408, closed
 *     │
 *   response ─ then idle keep-alive: closed after keepAliveTimeoutMs (Node adds ~1 s)
 *
 *   any time ── no byte moving either way for socketTimeoutMs (a reader that stopped
 *               reading, a silent peer): closed, no response
 *   pipelining  more than maxPipelinedRequests unanswered requests on one connection:
 *               destroyed (Node parses a whole read chunk of pipelined requests before
 *               it pauses, so without this one 64 KiB chunk could queue ~1,000 responses)
 *
 * Node checks the two request timeouts every `connectionsCheckingInterval`
 * (30 s by default, which would let a slowloris hold a socket 30 s past its
 * limit); we check at most every second, a walk over the open sockets only.
 */
export interface HttpServerLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxHeaderBytes: number;
  maxConnections: number;
  /** 0: unlimited. */
  maxRequestsPerSocket: number;
  /** Inactivity limit of a connection, in both directions; 0: off. */
  socketTimeoutMs: number;
  /** Requests received on one connection and not yet answered. */
  maxPipelinedRequests: number;
  /** HTTP/2 (TLS servers only): streams one connection may have open at once; its pipelining bound (http2-limits.ts). */
  maxConcurrentStreams: number;
}

/** The option table rows for one daemon, with that daemon's defaults (spread into its OPTIONS). */
export function httpLimitOptions(defaults: HttpServerLimits): OptionSpec[] {
  return [
    {
      key: 'httpHeadersTimeoutMs',
      flag: '--http-headers-timeout-ms <ms>',
      env: 'METASYNC_HTTP_HEADERS_TIMEOUT_MS',
      description:
        'a client must send its complete request headers within this (slowloris guard; 408 and close; the request timeout bounds it too)',
      defaultValue: String(defaults.headersTimeoutMs),
    },
    {
      key: 'httpRequestTimeoutMs',
      flag: '--http-request-timeout-ms <ms>',
      env: 'METASYNC_HTTP_REQUEST_TIMEOUT_MS',
      description: 'a client must send its whole request, body included, within this (trickled bodies; 408 and close)',
      defaultValue: String(defaults.requestTimeoutMs),
    },
    {
      key: 'httpKeepAliveTimeoutMs',
      flag: '--http-keep-alive-timeout-ms <ms>',
      env: 'METASYNC_HTTP_KEEP_ALIVE_TIMEOUT_MS',
      description: 'an idle keep-alive connection is closed after this (Node adds about 1 s)',
      defaultValue: String(defaults.keepAliveTimeoutMs),
    },
    {
      key: 'httpMaxHeaderBytes',
      flag: '--http-max-header-bytes <bytes>',
      env: 'METASYNC_HTTP_MAX_HEADER_BYTES',
      description: 'largest request line plus headers (431 and close beyond)',
      defaultValue: String(defaults.maxHeaderBytes),
    },
    {
      key: 'httpMaxConnections',
      flag: '--http-max-connections <n>',
      env: 'METASYNC_HTTP_MAX_CONNECTIONS',
      description:
        'open client connections; beyond it a new connection is closed at once, without a response (keep it below the open-files limit)',
      defaultValue: String(defaults.maxConnections),
    },
    {
      key: 'httpMaxRequestsPerSocket',
      flag: '--http-max-requests-per-socket <n>',
      env: 'METASYNC_HTTP_MAX_REQUESTS_PER_SOCKET',
      description: 'requests served on one keep-alive connection before it is closed (0: unlimited)',
      defaultValue: String(defaults.maxRequestsPerSocket),
    },
    {
      key: 'httpSocketTimeoutMs',
      flag: '--http-socket-timeout-ms <ms>',
      env: 'METASYNC_HTTP_SOCKET_TIMEOUT_MS',
      description: 'a connection with no byte moving either way for this long is closed (clients that stop reading a response; 0: off)',
      defaultValue: String(defaults.socketTimeoutMs),
    },
    {
      key: 'httpMaxPipelinedRequests',
      flag: '--http-max-pipelined-requests <n>',
      env: 'METASYNC_HTTP_MAX_PIPELINED_REQUESTS',
      description: 'unanswered requests one connection may have queued (HTTP/1.1 pipelining); beyond it the connection is destroyed',
      defaultValue: String(defaults.maxPipelinedRequests),
    },
    {
      key: 'http2MaxConcurrentStreams',
      flag: '--http2-max-concurrent-streams <n>',
      env: 'METASYNC_HTTP2_MAX_CONCURRENT_STREAMS',
      description:
        'with TLS: HTTP/2 streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS; a stream past it is refused with REFUSED_STREAM)',
      defaultValue: String(defaults.maxConcurrentStreams),
    },
  ];
}

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** zod fields for the rows of `httpLimitOptions` (spread into the daemon's schema). */
export const HTTP_LIMITS_SCHEMA_SHAPE = {
  httpHeadersTimeoutMs: int(100, 3_600_000),
  httpRequestTimeoutMs: int(100, 3_600_000),
  httpKeepAliveTimeoutMs: int(100, 3_600_000),
  // Node's parser needs room for a request line and Host; 1 MiB is far past anything legitimate.
  httpMaxHeaderBytes: int(1024, 1024 * 1024),
  httpMaxConnections: int(1, 1_000_000),
  httpMaxRequestsPerSocket: int(0, 1_000_000),
  httpSocketTimeoutMs: int(0, 3_600_000),
  httpMaxPipelinedRequests: int(1, 10_000),
  http2MaxConcurrentStreams: int(1, 10_000),
} as const;

/** The parsed rows of `httpLimitOptions`, as they sit in a daemon's config. */
export interface RawHttpLimits {
  httpHeadersTimeoutMs: number;
  httpRequestTimeoutMs: number;
  httpKeepAliveTimeoutMs: number;
  httpMaxHeaderBytes: number;
  httpMaxConnections: number;
  httpMaxRequestsPerSocket: number;
  httpSocketTimeoutMs: number;
  httpMaxPipelinedRequests: number;
  http2MaxConcurrentStreams: number;
}

/** The limits out of a parsed config holding the rows of `httpLimitOptions`. */
export function pickHttpLimits(raw: RawHttpLimits): HttpServerLimits {
  return {
    headersTimeoutMs: raw.httpHeadersTimeoutMs,
    requestTimeoutMs: raw.httpRequestTimeoutMs,
    keepAliveTimeoutMs: raw.httpKeepAliveTimeoutMs,
    maxHeaderBytes: raw.httpMaxHeaderBytes,
    maxConnections: raw.httpMaxConnections,
    maxRequestsPerSocket: raw.httpMaxRequestsPerSocket,
    socketTimeoutMs: raw.httpSocketTimeoutMs,
    maxPipelinedRequests: raw.httpMaxPipelinedRequests,
    maxConcurrentStreams: raw.http2MaxConcurrentStreams,
  };
}

/** How often refused connections are summed into one warning, so a flood cannot flood the log. */
const DROP_LOG_WINDOW_MS = 10_000;

/**
 * A node http server with the limits applied (a fastify `serverFactory` builds it).
 * Refused connections are logged once, then summed per 10 s window.
 */
export function createLimitedHttpServer(options: {
  limits: HttpServerLimits;
  logger: Logger;
  handler: RequestListener<typeof IncomingMessage, typeof ServerResponse>;
}): Server {
  const { limits, logger } = options;
  const checkEveryMs = Math.max(50, Math.min(1_000, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4)));
  const server = createServer(
    { maxHeaderSize: limits.maxHeaderBytes, connectionsCheckingInterval: checkEveryMs },
    limitPipelining(limits.maxPipelinedRequests, options.handler),
  );
  // Set as properties, not constructor options: the constructor refuses a headers timeout above the
  // request timeout, while at run time the shorter one simply wins (documented in docs/operations.md).
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxConnections = limits.maxConnections;
  server.maxRequestsPerSocket = limits.maxRequestsPerSocket;
  // No 'timeout' listener anywhere (fastify adds none), so Node destroys the socket when it fires.
  server.setTimeout(limits.socketTimeoutMs);
  logDroppedConnections(server, limits, logger);
  return server;
}

/** Logs connections refused at `maxConnections` ('drop', any net.Server): once, then summed per 10 s window. */
export function logDroppedConnections(server: NetServer, limits: HttpServerLimits, logger: Logger): void {
  let droppedInWindow = 0;
  let windowTimer: NodeJS.Timeout | undefined;
  server.on('drop', () => {
    if (windowTimer !== undefined) {
      droppedInWindow += 1;
      return;
    }
    logger.warn({ maxConnections: limits.maxConnections }, 'connection refused: max connections reached');
    windowTimer = setTimeout(() => {
      windowTimer = undefined;
      if (droppedInWindow > 0)
        logger.warn(
          { maxConnections: limits.maxConnections, dropped: droppedInWindow, windowMs: DROP_LOG_WINDOW_MS },
          'connections refused: max connections reached',
        );
      droppedInWindow = 0;
    }, DROP_LOG_WINDOW_MS);
    windowTimer.unref();
  });
  server.on('close', () => clearTimeout(windowTimer));
}

const kUnanswered = Symbol('metasync.unansweredRequests');
type CountedSocket = Socket & { [kUnanswered]?: number };

/**
 * Counts each connection's requests that have no finished response yet (a plain
 * property on the socket: this wraps the hot path) and destroys a connection
 * that queues more than `max`. Composer and curl never pipeline; a client that
 * sends a stream of requests without reading the answers is refused before
 * their responses pile up in memory.
 */
export function limitPipelining(
  max: number,
  handler: RequestListener<typeof IncomingMessage, typeof ServerResponse>,
): RequestListener<typeof IncomingMessage, typeof ServerResponse> {
  return (req, res) => {
    const socket = req.socket as CountedSocket;
    const unanswered = (socket[kUnanswered] ?? 0) + 1;
    if (unanswered > max) {
      socket.destroy();
      return;
    }
    socket[kUnanswered] = unanswered;
    // 'close' follows 'finish', and also comes when the connection dies first (and only once).
    // One shared listener, not a closure per request: this wraps the serving hot path.
    res.on('close', countAnswered);
    handler(req, res);
  };
}

function countAnswered(this: ServerResponse): void {
  const socket = this.req.socket as CountedSocket;
  socket[kUnanswered] = (socket[kUnanswered] ?? 1) - 1;
}
