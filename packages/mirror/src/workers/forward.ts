import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '@metasync/shared/daemon';

/**
 * Requests a serving thread does not answer itself (everything but a hot hit:
 * health, metrics, admin, dists, odd URLs, the proxy fallback, bodies too large
 * to read whole) go to the main thread, which answers them with its own app
 * through `inject()`: the same routes, limits and error handling as without
 * workers, and one place that knows sync state, drains and the proxy.
 *
 *   worker: collect the body (<= MAX_BODY_BYTES) ──{request}──▶ main: app.inject()
 *   worker: writeHead + end        ◀──{response: status, headers, body}── main
 *
 * The answer is buffered whole on the main thread (inject collects it): the
 * bodies that take this way are bounded already (the proxy's
 * --proxy-max-body-bytes, a repository object, an archive's size cap).
 */
export interface ForwardedRequest {
  type: 'request';
  id: number;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Uint8Array | undefined;
  remoteAddress: string;
}

export interface ForwardedResponse {
  type: 'response';
  id: number;
  status: number;
  headers: OutgoingHttpHeaders;
  body: Uint8Array;
}

/** Request bodies (admin calls) are tiny; fastify's own default limit. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** Connection-level headers belong to the worker's own connection (and HTTP/2 refuses them). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date', 'upgrade', 'proxy-connection']);

/** Main thread: answers a forwarded request with the app, as if it had arrived on the app's own server. */
export async function answerForwarded(app: FastifyInstance, request: ForwardedRequest, logger: Logger): Promise<ForwardedResponse> {
  try {
    const response = await app.inject({
      method: request.method as 'GET',
      url: request.url,
      headers: request.headers,
      ...(request.body === undefined
        ? {}
        : { payload: Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength) }),
      remoteAddress: request.remoteAddress,
    });
    const headers: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(response.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
    return { type: 'response', id: request.id, status: response.statusCode, headers, body: response.rawPayload };
  } catch (err) {
    // The app answers every request itself (its error handler included): this is a defect, never a 5xx for a repository path.
    logger.error({ err, url: request.url.slice(0, 300) }, 'forwarded request failed');
    return {
      type: 'response',
      id: request.id,
      status: 404,
      headers: { 'cache-control': 'no-store', 'content-type': 'application/json; charset=utf-8' },
      body: Buffer.from(JSON.stringify({ code: 'METASYNC_ERR_PATH_NOT_FOUND', message: 'no such path in the repository' })),
    };
  }
}

export interface Forwarder {
  forward(req: IncomingMessage, res: ServerResponse): void;
  /** A response from the main thread. */
  settle(response: ForwardedResponse): void;
  /** Requests waiting for the main thread. */
  pending(): number;
}

/** Worker thread: sends requests to the main thread and writes its answers. */
export function createForwarder(send: (request: ForwardedRequest) => void): Forwarder {
  const waiting = new Map<number, { res: ServerResponse; head: boolean }>();
  let nextId = 0;
  return {
    forward(req, res) {
      const chunks: Buffer[] = [];
      let bytes = 0;
      let refused = false;
      req.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes <= MAX_BODY_BYTES) chunks.push(chunk);
        else if (!refused) {
          refused = true;
          res.writeHead(413, { 'cache-control': 'no-store', connection: 'close' });
          res.end();
        }
      });
      req.on('end', () => {
        if (refused) return;
        const id = nextId++;
        waiting.set(id, { res, head: req.method === 'HEAD' });
        send({
          type: 'request',
          id,
          method: req.method ?? 'GET',
          url: req.url ?? '/',
          headers: headersOf(req.rawHeaders),
          body: bytes === 0 ? undefined : Buffer.concat(chunks),
          remoteAddress: req.socket?.remoteAddress ?? '127.0.0.1',
        });
      });
    },
    settle(response) {
      const waiter = waiting.get(response.id);
      if (waiter === undefined) return;
      waiting.delete(response.id);
      const { res, head } = waiter;
      // A client that left meanwhile: nothing to write.
      if (res.destroyed) return;
      res.writeHead(response.status, response.headers);
      res.end(head ? undefined : Buffer.from(response.body.buffer, response.body.byteOffset, response.body.byteLength));
    },
    pending: () => waiting.size,
  };
}

/** The request's headers as one object (repeated ones joined as Node joins them); HTTP/2 pseudo-headers become `host`. */
function headersOf(raw: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    let name = raw[i]!.toLowerCase();
    if (name.startsWith(':')) {
      if (name !== ':authority') continue;
      name = 'host';
    }
    const value = raw[i + 1]!;
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return headers;
}
