import { constants, type Http2SecureServer, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { HttpServerLimits } from './http-limits.js';

/**
 * The HTTP/1.1 limits (http-limits.ts) carried over to HTTP/2 sessions, where
 * Node's http.Server timeouts do not reach. Each row is the nearest HTTP/2
 * equivalent; docs/operations.md ("Limits") lists them side by side:
 *
 *   maxPipelinedRequests  ──> SETTINGS_MAX_CONCURRENT_STREAMS = maxConcurrentStreams:
 *                              a stream past it is refused by nghttp2 (REFUSED_STREAM, or
 *                              PROTOCOL_ERROR once the client acknowledged the setting)
 *   maxHeaderBytes        ──> SETTINGS_MAX_HEADER_LIST_SIZE: a bigger header list is reset
 *                              with ENHANCE_YOUR_CALM (HTTP/2 has no 431 before a stream exists)
 *   headersTimeoutMs      ──> a new connection must complete its first request head in time,
 *                              else GOAWAY; later heads fall under the idle rule below
 *   keepAliveTimeoutMs    ──> a session with no open stream for this long gets GOAWAY
 *                              (a client trickling an unfinished head has no open stream)
 *   requestTimeoutMs      ──> a stream whose request body is not complete in time gets 408
 *                              (if nothing was answered yet) and RST_STREAM
 *   maxRequestsPerSocket  ──> after that many streams the session gets GOAWAY (graceful)
 *   socketTimeoutMs, maxConnections: set on the server itself, they apply to every socket
 *
 * Per stream this costs a counter and one 'close' listener; a timer only for
 * streams with a body (never for Composer's GETs).
 */
export function limitHttp2Sessions(server: Http2SecureServer, limits: HttpServerLimits): void {
  server.on('session', (session: ServerHttp2Session) => {
    let open = 0;
    let started = 0;
    let idleSince = Date.now();
    let everStarted = false;
    const timer = setTimeout(function check() {
      if (session.destroyed || session.closed) return;
      const limitMs = everStarted ? limits.keepAliveTimeoutMs : limits.headersTimeoutMs;
      const idleMs = Date.now() - idleSince;
      if (open === 0 && idleMs >= limitMs) {
        session.close();
        return;
      }
      timer.refresh();
      // refresh() re-arms with the original delay: a check may come up to one interval late,
      // like Node's own connection checks for HTTP/1.1.
    }, checkIntervalMs(limits));
    timer.unref();
    session.once('close', () => clearTimeout(timer));
    session.on('stream', (stream: ServerHttp2Stream) => {
      open += 1;
      started += 1;
      everStarted = true;
      if (limits.maxRequestsPerSocket > 0 && started >= limits.maxRequestsPerSocket) session.close();
      const bodyTimer = stream.endAfterHeaders ? undefined : setTimeout(() => cutSlowBody(stream), limits.requestTimeoutMs);
      bodyTimer?.unref();
      stream.once('close', () => {
        open -= 1;
        if (open === 0) idleSince = Date.now();
        if (bodyTimer !== undefined) clearTimeout(bodyTimer);
      });
    });
  });
}

function checkIntervalMs(limits: HttpServerLimits): number {
  return Math.max(50, Math.min(1_000, Math.floor(Math.min(limits.headersTimeoutMs, limits.keepAliveTimeoutMs) / 4)));
}

/** The request body did not end in time: 408 when nothing was answered yet, then reset the stream. */
function cutSlowBody(stream: ServerHttp2Stream): void {
  if (stream.destroyed || stream.closed || stream.state.remoteClose === 1) return;
  if (!stream.headersSent) {
    stream.respond({ ':status': 408, 'cache-control': 'no-store' }, { endStream: true });
  }
  stream.close(constants.NGHTTP2_NO_ERROR);
}
