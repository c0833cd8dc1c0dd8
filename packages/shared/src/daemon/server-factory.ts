import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { createLimitedHttpServer, type HttpServerLimits } from './http-limits.js';
import type { Logger } from './logger.js';
import type { TlsFiles } from './tls-options.js';
import { createLimitedTlsServer } from './tls-server.js';

/**
 * The one place a daemon's server kind is chosen: plain HTTP/1.1 without TLS
 * files (unchanged, so the plain path costs exactly what it did), HTTPS with
 * HTTP/2 and HTTP/1.1 with them. fastify must then run in http2 mode
 * (`fastifyTlsOptions`), which makes it accept the compat objects.
 */
export function createDaemonServer(options: {
  limits: HttpServerLimits;
  logger: Logger;
  tls: TlsFiles | undefined;
  handler: RequestListener<typeof IncomingMessage, typeof ServerResponse>;
}): Server {
  const { tls, ...rest } = options;
  if (tls === undefined) return createLimitedHttpServer(rest);
  // Typed as the plain server for the daemons' single FastifyInstance type: fastify only listens on
  // and closes it (both kinds have those), and its http2 mode comes from `fastifyTlsOptions`.
  return createLimitedTlsServer({ ...rest, tls }) as unknown as Server;
}

/**
 * fastify options matching `createDaemonServer`: http2 mode, and `https` so its listen() reports an
 * https:// address. Typed `object` so that the daemons keep one FastifyInstance type for both kinds.
 */
export function fastifyTlsOptions(tls: TlsFiles | undefined): object {
  return tls === undefined ? {} : { http2: true, https: { allowHTTP1: true } };
}
