import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * An HTTP hop between a mirror and its primary that plays the freeze attacker
 * (or a stuck caching middlebox). In `pass` mode it forwards everything and
 * records the primary's answers to `state` and `changes`, signatures
 * included. In `replay` mode it answers those two from the recording (the
 * exact bytes the primary signed earlier), holds the event stream open with
 * keep-alive comments only, and still forwards objects and repository paths.
 * Every signature the mirror sees is genuine; only time has stopped.
 *
 *   mirror --> [ pass: forward + record state/changes | replay: recorded answers ] --> primary
 */
export type ReplayMode = 'pass' | 'replay';

export interface ReplayProxy {
  url: string;
  setMode(mode: ReplayMode): void;
  /** Requests answered from the recording so far. */
  replayed(): number;
  close(): Promise<void>;
}

interface Recorded {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const STATE_PATH = '/sync/v1/state';
const CHANGES_PATH = '/sync/v1/changes';
const EVENTS_PATH = '/sync/v1/events';
const KEEPALIVE_MS = 250;

/** The recorded bytes with their headers, minus hop-by-hop framing (the body is whole). */
function send(res: ServerResponse, recorded: Recorded): void {
  const { 'transfer-encoding': _te, connection: _connection, 'keep-alive': _keepAlive, ...headers } = recorded.headers;
  res.writeHead(recorded.status, { ...headers, 'content-length': String(recorded.body.length) });
  res.end(recorded.body);
}

export async function startReplayProxy(target: string): Promise<ReplayProxy> {
  const targetUrl = new URL(target);
  let mode: ReplayMode = 'pass';
  let replayed = 0;
  let lastState: Recorded | undefined;
  let lastChanges: Recorded | undefined;
  const changesByUrl = new Map<string, Recorded>();
  const streams = new Set<ServerResponse>();
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();

  const replay = (res: ServerResponse, recorded: Recorded | undefined): void => {
    if (recorded === undefined) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('nothing recorded\n');
      return;
    }
    replayed++;
    send(res, recorded);
  };

  const forward = (req: IncomingMessage, res: ServerResponse, onAnswer?: (answer: Recorded) => void): void => {
    const upstream = request(
      {
        host: targetUrl.hostname,
        port: targetUrl.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: targetUrl.host },
      },
      (answer) => {
        if (onAnswer === undefined) {
          if (String(answer.headers['content-type'] ?? '').startsWith('text/event-stream')) {
            streams.add(res);
            res.once('close', () => streams.delete(res));
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('error', () => res.destroy());
        answer.on('end', () => {
          const recorded = { status: answer.statusCode ?? 502, headers: answer.headers, body: Buffer.concat(chunks) };
          if (recorded.status === 200) onAnswer(recorded);
          send(res, recorded);
        });
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

  const frozenEvents = (res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    res.write(': replayed stream\n\n');
    const timer = setInterval(() => res.write(': keep-alive\n\n'), KEEPALIVE_MS);
    timers.add(timer);
    streams.add(res);
    res.once('close', () => {
      clearInterval(timer);
      timers.delete(timer);
      streams.delete(res);
    });
  };

  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const path = url.split('?', 1)[0] ?? '';
    if (mode === 'pass') {
      if (path === STATE_PATH) return forward(req, res, (answer) => (lastState = answer));
      if (path === CHANGES_PATH) {
        return forward(req, res, (answer) => {
          changesByUrl.set(url, answer);
          lastChanges = answer;
        });
      }
      return forward(req, res);
    }
    if (path === STATE_PATH) return replay(res, lastState);
    if (path === CHANGES_PATH) return replay(res, changesByUrl.get(url) ?? lastChanges);
    if (path === EVENTS_PATH) return frozenEvents(res);
    forward(req, res);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    setMode(next) {
      mode = next;
      // Live event streams belong to the previous mode: drop them so the mirror reconnects into the new one.
      for (const stream of streams) stream.destroy();
    },
    replayed: () => replayed,
    async close() {
      for (const timer of timers) clearInterval(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
