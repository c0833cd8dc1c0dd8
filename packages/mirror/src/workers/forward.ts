import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '@metasync/shared/daemon';

/**
 * Requests a serving thread does not answer itself (everything but a hot hit:
 * health, metrics, admin, dists, odd URLs, the proxy fallback, objects over
 * 1 MiB) go to the main thread, which answers them with its own app through
 * `inject()`: the same routes, limits and error handling as without workers,
 * and one place that knows sync state, drains, archives and the proxy.
 *
 *   worker: collect the body (<= MAX_BODY_BYTES) ──request──▶ main: app.inject (streamed)
 *   worker: writeHead               ◀──head (status, headers)──
 *   worker: write, ack once written ◀──chunk── ... ──end | fail──
 *
 * The answer streams: main sends at most WINDOW_BYTES that the worker has not
 * yet written to its client (the app's stream is paused beyond), so a slow
 * client of a large archive holds a window, not the archive. A client that
 * leaves makes the worker send `abort`, which ends the app's stream.
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

/** Main -> worker, in this order per request: head, chunk*, end | fail. */
export type ForwardedAnswer =
  | { type: 'head'; id: number; status: number; headers: OutgoingHttpHeaders }
  | { type: 'chunk'; id: number; data: Uint8Array }
  | { type: 'end'; id: number }
  | { type: 'fail'; id: number };

/** Worker -> main: bytes written to the client (opens the window again), or the client left. */
export type ForwardControl = { type: 'ack'; id: number; bytes: number } | { type: 'abort'; id: number };

/** Request bodies (admin calls) are tiny; fastify's own default limit. */
export const MAX_BODY_BYTES = 1024 * 1024;
const WINDOW_BYTES = 1024 * 1024;

/** Connection-level headers belong to the worker's own connection (and HTTP/2 refuses them). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'date', 'upgrade', 'proxy-connection']);

export interface ForwardedExchange {
  ack(bytes: number): void;
  abort(): void;
}

/** Main thread: answers a forwarded request with the app, as if it had arrived on the app's own server. */
export function answerForwarded(options: {
  app: FastifyInstance;
  request: ForwardedRequest;
  send: (answer: ForwardedAnswer) => void;
  logger: Logger;
  /** Called once the answer is complete or abandoned. */
  done: () => void;
}): ForwardedExchange {
  const { request, send, logger } = options;
  const id = request.id;
  let stream: Readable | undefined;
  /** The app's side of the exchange: closing it is what stops the app's own stream (a file, an archive). */
  let appResponse: { destroy(): void } | undefined;
  let unacked = 0;
  let aborted = false;
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    options.done();
  };
  options.app
    .inject({
      method: request.method as 'GET',
      url: request.url,
      headers: request.headers,
      ...(request.body === undefined
        ? {}
        : { payload: Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength) }),
      remoteAddress: request.remoteAddress,
      payloadAsStream: true,
    })
    .then(
      (response) => {
        const headers: OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(response.headers))
          if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
        send({ type: 'head', id, status: response.statusCode, headers });
        const body = response.stream();
        stream = body;
        appResponse = response.raw.res;
        body.on('data', (chunk: Buffer) => {
          unacked += chunk.length;
          send({ type: 'chunk', id, data: chunk });
          if (unacked > WINDOW_BYTES) body.pause();
        });
        body.on('end', () => {
          send({ type: 'end', id });
          finish();
        });
        body.on('error', (err) => {
          if (!aborted) logger.warn({ err, url: request.url.slice(0, 300) }, 'forwarded answer failed mid-body');
          send({ type: 'fail', id });
          finish();
        });
        if (aborted) {
          body.destroy();
          appResponse.destroy();
        }
      },
      (err: unknown) => {
        // The app answers every request itself (its error handler included): this is a defect, never a 5xx for a repository path.
        logger.error({ err, url: request.url.slice(0, 300) }, 'forwarded request failed');
        send({
          type: 'head',
          id,
          status: 404,
          headers: { 'cache-control': 'no-store', 'content-type': 'application/json; charset=utf-8' },
        });
        send({
          type: 'chunk',
          id,
          data: Buffer.from(JSON.stringify({ code: 'METASYNC_ERR_PATH_NOT_FOUND', message: 'no such path in the repository' })),
        });
        send({ type: 'end', id });
        finish();
      },
    );
  return {
    ack(bytes) {
      unacked -= bytes;
      if (unacked <= WINDOW_BYTES && stream?.isPaused() === true) stream.resume();
    },
    abort() {
      aborted = true;
      stream?.destroy();
      appResponse?.destroy();
      finish();
    },
  };
}

export interface Forwarder {
  forward(req: IncomingMessage, res: ServerResponse): void;
  /** An answer part from the main thread. */
  receive(answer: ForwardedAnswer): void;
  /** Requests waiting for, or streaming from, the main thread. */
  pending(): number;
}

/** Worker thread: sends requests to the main thread and streams its answers to the clients. */
export function createForwarder(send: (message: ForwardedRequest | ForwardControl) => void): Forwarder {
  const open = new Map<number, { res: ServerResponse; head: boolean; owed: number; draining: boolean }>();
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
        open.set(id, { res, head: req.method === 'HEAD', owed: 0, draining: false });
        // A client that leaves before its answer is complete: the main thread stops producing it.
        res.once('close', () => {
          if (open.delete(id)) send({ type: 'abort', id });
        });
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
    receive(answer) {
      const exchange = open.get(answer.id);
      if (exchange === undefined) return;
      const { res } = exchange;
      if (answer.type === 'head') res.writeHead(answer.status, answer.headers);
      else if (answer.type === 'chunk') {
        const data = Buffer.from(answer.data.buffer, answer.data.byteOffset, answer.data.byteLength);
        if (exchange.head) {
          send({ type: 'ack', id: answer.id, bytes: data.length });
          return;
        }
        exchange.owed += data.length;
        const flushed = res.write(data);
        if (flushed && !exchange.draining) {
          send({ type: 'ack', id: answer.id, bytes: exchange.owed });
          exchange.owed = 0;
        } else if (!exchange.draining) {
          exchange.draining = true;
          res.once('drain', () => {
            exchange.draining = false;
            send({ type: 'ack', id: answer.id, bytes: exchange.owed });
            exchange.owed = 0;
          });
        }
      } else {
        open.delete(answer.id);
        if (answer.type === 'end') res.end();
        // Headers (and a Content-Length) are out: only a cut connection tells the client the body is incomplete.
        else res.destroy();
      }
    },
    pending: () => open.size,
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
