import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import { limitHttp2Sessions } from './http2-limits.js';
import { limitPipelining, logDroppedConnections, type HttpServerLimits } from './http-limits.js';
import type { Logger } from './logger.js';
import type { TlsFiles } from './tls-options.js';
import { loadTlsPair, watchTlsPair } from './tls-pair.js';

/**
 * An HTTPS server for a daemon: HTTP/2 offered by ALPN, HTTP/1.1 as the
 * fallback (`allowHTTP1`), TLS by Node (invariant 10). Node routes an HTTP/1.1
 * connection of this server through its http.Server machinery, so the
 * HTTP/1.1 limits are set the same way as on the plain server
 * (createLimitedHttpServer); HTTP/2 sessions get their equivalents
 * (http2-limits.ts). fastify's http2 mode hands the handler Node's
 * Http2ServerRequest/Response compat objects for HTTP/2 streams.
 *
 * The certificate and key are read now (a bad pair throws
 * METASYNC_ERR_CONFIG_INVALID) and re-read when they change (tls-pair.ts).
 */
export function createLimitedTlsServer(options: {
  limits: HttpServerLimits;
  logger: Logger;
  tls: TlsFiles;
  handler: RequestListener<typeof IncomingMessage, typeof ServerResponse>;
}): Http2SecureServer {
  const { limits, logger, tls } = options;
  const pair = loadTlsPair(tls);
  const http1 = limitPipelining(limits.maxPipelinedRequests, options.handler);
  const handler = options.handler;
  const server = createSecureServer(
    {
      allowHTTP1: true,
      cert: pair.cert,
      key: pair.key,
      settings: { maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderBytes },
    },
    // HTTP/2 streams share one socket: the pipelining count (per socket) is HTTP/1.1's; streams are bounded by SETTINGS.
    (req, res) => {
      if (req.httpVersionMajor === 2) handler(req as unknown as IncomingMessage, res as unknown as ServerResponse);
      else http1(req as unknown as IncomingMessage, res as unknown as ServerResponse);
    },
  );
  // The HTTP/1.1 fallback reads these from the server, as http.Server does (properties: see createLimitedHttpServer).
  const checkEveryMs = Math.max(50, Math.min(1_000, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4)));
  const h1 = server as Http2SecureServer & {
    headersTimeout: number;
    requestTimeout: number;
    keepAliveTimeout: number;
    maxHeaderSize: number;
    maxRequestsPerSocket: number;
    connectionsCheckingInterval: number;
  };
  h1.connectionsCheckingInterval = checkEveryMs;
  h1.headersTimeout = limits.headersTimeoutMs;
  h1.requestTimeout = limits.requestTimeoutMs;
  h1.keepAliveTimeout = limits.keepAliveTimeoutMs;
  h1.maxHeaderSize = limits.maxHeaderBytes;
  h1.maxRequestsPerSocket = limits.maxRequestsPerSocket;
  server.maxConnections = limits.maxConnections;
  // Every socket, HTTP/1.1 or HTTP/2; no 'timeout' listener, so Node destroys it (an HTTP/2 session with it).
  server.setTimeout(limits.socketTimeoutMs);
  limitHttp2Sessions(server, limits);
  logDroppedConnections(server, limits, logger);
  logger.info({ certFile: tls.certFile, serial: pair.serial, notAfter: pair.notAfter, subject: pair.subject }, 'tls certificate loaded');
  const watcher = watchTlsPair({ files: tls, target: server, logger, loaded: pair });
  server.on('close', () => watcher.stop());
  return server;
}
