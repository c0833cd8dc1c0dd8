import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { HEADERS } from '@metasync/shared';

/**
 * An HTTP forwarder on loopback that a test can shut like a gate: while
 * closed, every connection (new and open, SSE streams included) is dropped,
 * as if the network path to the target had failed. Used to make ONE mirror
 * lose its primary (and go stale) while the others stay fresh. It can also
 * answer chosen routes itself (`stage`), e.g. with a forged signed document.
 */
export interface GateProxy {
  url: string;
  /** Drop every open connection and refuse new requests. */
  shut(): void;
  open(): void;
  /** Answer these routes (path without query) here instead of forwarding. */
  stage: Map<string, (url: URL) => { body: Buffer; signature: string }>;
  close(): Promise<void>;
}

export async function startGateProxy(target: string): Promise<GateProxy> {
  const targetUrl = new URL(target);
  let shut = false;
  const sockets = new Set<Socket>();
  const stage: GateProxy['stage'] = new Map();
  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    if (shut) {
      req.socket.destroy();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://gate');
    const staged = stage.get(url.pathname);
    if (staged !== undefined) {
      const { body, signature } = staged(url);
      res.writeHead(200, { 'content-type': 'application/json', [HEADERS.signature]: signature, 'cache-control': 'no-store' }).end(body);
      return;
    }
    const upstream = request(
      {
        host: targetUrl.hostname,
        port: targetUrl.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: targetUrl.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('socket', (socket) => {
      if (sockets.has(socket)) return;
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };
  const server = createServer(forward);
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    shut() {
      shut = true;
      for (const socket of sockets) socket.destroy();
    },
    open() {
      shut = false;
    },
    stage,
    close: () =>
      new Promise<void>((resolve) => {
        shut = true;
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
