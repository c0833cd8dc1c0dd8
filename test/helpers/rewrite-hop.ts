import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * An HTTP hop between a mirror and its primary that plays a network attacker
 * on the proxy fallback. Sync calls (`/sync/...`) pass through, or in `hold`
 * mode are answered 503 (open event streams cut), so the mirror stays at its
 * applied seq and has to proxy what the primary publishes meanwhile. Every
 * other request (a repository path) is fetched whole from the primary and
 * handed to the current `rewrite`, whose answer is what the mirror gets.
 *
 *   mirror --> [ /sync/*: pass | hold (503) ]             --> primary
 *   mirror <-- [ repository path: rewrite(primary answer) ] <-- primary
 */
export interface HopAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export type Rewrite = (input: {
  /** The request target, e.g. `/p2/acme/foo.json`. */
  target: string;
  answer: HopAnswer;
}) => HopAnswer | Promise<HopAnswer>;

export interface RewriteHop {
  url: string;
  setSync(mode: 'pass' | 'hold'): void;
  /** Undefined: repository answers pass unchanged. */
  setRewrite(rewrite: Rewrite | undefined): void;
  /** GET from the primary as the mirror's proxy asks (identity), for recording or replaying. */
  fetchUpstream(target: string): Promise<HopAnswer>;
  /** Repository answers handed to a rewrite so far. */
  rewritten(): number;
  close(): Promise<void>;
}

export async function startRewriteHop(upstream: string): Promise<RewriteHop> {
  const target = new URL(upstream);
  let sync: 'pass' | 'hold' = 'pass';
  let rewrite: Rewrite | undefined;
  let rewritten = 0;
  const streams = new Set<ServerResponse>();
  const sockets = new Set<Socket>();

  const upstreamRequest = (
    req: { method: string; url: string; headers: IncomingHttpHeaders },
    onAnswer: (answer: IncomingMessage) => void,
  ) =>
    request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
      onAnswer,
    );

  function fetchUpstream(url: string, headers: IncomingHttpHeaders = { 'accept-encoding': 'identity' }): Promise<HopAnswer> {
    return new Promise((resolve, reject) => {
      const outgoing = upstreamRequest({ method: 'GET', url, headers }, (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('error', reject);
        answer.on('end', () => resolve({ status: answer.statusCode ?? 0, headers: answer.headers, body: Buffer.concat(chunks) }));
      });
      outgoing.setTimeout(5_000, () => outgoing.destroy(new Error(`hop: no answer from the primary for ${url}`)));
      outgoing.on('error', reject);
      outgoing.end();
    });
  }

  function passSync(req: IncomingMessage, res: ServerResponse): void {
    const outgoing = upstreamRequest({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers }, (answer) => {
      if (String(answer.headers['content-type'] ?? '').startsWith('text/event-stream')) {
        streams.add(res);
        res.once('close', () => streams.delete(res));
      }
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    outgoing.on('error', () => res.destroy());
    req.pipe(outgoing);
  }

  async function answerRepository(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    let answer = await fetchUpstream(url, req.headers);
    if (rewrite !== undefined) {
      rewritten++;
      answer = await rewrite({ target: url, answer });
    }
    const { 'transfer-encoding': _te, connection: _connection, 'keep-alive': _keepAlive, ...headers } = answer.headers;
    res.writeHead(answer.status, { ...headers, 'content-length': String(answer.body.length) });
    res.end(answer.body);
  }

  const server = createServer((req, res) => {
    if ((req.url ?? '').startsWith('/sync/')) {
      if (sync === 'hold') {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('held\n');
        return;
      }
      passSync(req, res);
      return;
    }
    answerRepository(req, res).catch(() => res.destroy());
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    setSync(mode) {
      sync = mode;
      // A held path carries no push either: cut the open event streams (the mirror's reconnects then get 503).
      if (mode === 'hold') for (const stream of streams) stream.destroy();
    },
    setRewrite(next) {
      rewrite = next;
    },
    fetchUpstream: (url) => fetchUpstream(url),
    rewritten: () => rewritten,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
