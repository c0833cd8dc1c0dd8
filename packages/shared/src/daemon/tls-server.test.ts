import { request as httpsRequest } from 'node:https';
import { connect as h2connect, constants, type ClientHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeTlsFixtures, type TlsFixtures } from '../../../../test/helpers/tls-certs.js';
import { isMetasyncError } from '../errors.js';
import type { HttpServerLimits } from './http-limits.js';
import type { Logger } from './logger.js';
import { createLimitedTlsServer } from './tls-server.js';
import { loadTlsPair } from './tls-pair.js';

/** HTTPS with HTTP/2 by ALPN: the limits of http-limits.ts carried to HTTP/2, and certificate reload. */
const LIMITS: HttpServerLimits = {
  headersTimeoutMs: 600,
  requestTimeoutMs: 600,
  keepAliveTimeoutMs: 600,
  maxHeaderBytes: 4096,
  maxConnections: 50,
  maxRequestsPerSocket: 0,
  socketTimeoutMs: 60_000,
  maxPipelinedRequests: 4,
  maxConcurrentStreams: 4,
};

let fixtures: TlsFixtures;
let ca: Buffer;
beforeAll(async () => {
  fixtures = await makeTlsFixtures();
  ca = await readFile(fixtures.caFile);
});
afterAll(async () => fixtures.remove());

const open: { server?: Http2SecureServer; sessions: ClientHttp2Session[] } = { sessions: [] };
afterEach(async () => {
  for (const session of open.sessions.splice(0)) session.destroy();
  const server = open.server;
  open.server = undefined;
  if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
});

function fakeLogger(): Logger & { info: ReturnType<typeof vi.fn>; error: ReturnType<typeof vi.fn> } {
  return { info: vi.fn(), warn: vi.fn(), error: vi.fn(), debug: vi.fn() } as never;
}

async function start(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  options: {
    limits?: Partial<HttpServerLimits>;
    files?: { certFile: string; keyFile: string };
    reloadIntervalMs?: number;
    logger?: Logger;
  } = {},
): Promise<string> {
  const server = createLimitedTlsServer({
    limits: { ...LIMITS, ...options.limits },
    logger: options.logger ?? fakeLogger(),
    tls: { ...(options.files ?? fixtures), reloadIntervalMs: options.reloadIntervalMs ?? 60_000 },
    handler,
  });
  open.server = server;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function h2(url: string): ClientHttp2Session {
  const session = h2connect(url, { ca });
  session.on('error', () => undefined);
  open.sessions.push(session);
  return session;
}

/** One HTTP/2 request: status and body, or the stream's reset code. */
function h2get(
  session: ClientHttp2Session,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status?: number; body: string; rstCode?: number }> {
  return new Promise((resolve) => {
    const stream = session.request({ ':path': '/x', ...headers }, { endStream: body === undefined });
    let status: number | undefined;
    let text = '';
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    stream.on('error', () => undefined);
    stream.on('close', () =>
      resolve({ ...(status === undefined ? {} : { status }), body: text, ...(stream.rstCode ? { rstCode: stream.rstCode } : {}) }),
    );
    if (body !== undefined) stream.write(body);
  });
}

function h1get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; httpVersion: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${url}/x`, { ca, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, httpVersion: res.httpVersion, body: text }));
    });
    req.on('error', reject).end();
  });
}

function peerSerial(url: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: Number(port), ca, ALPNProtocols: ['http/1.1'] }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

const answer = (req: IncomingMessage, res: ServerResponse): void => {
  res.writeHead(200, ['content-type', 'text/plain', 'x-version', String(req.httpVersionMajor)]);
  res.end(`hello ${req.httpVersion}`);
};

describe('createLimitedTlsServer', () => {
  it('offers HTTP/2 by ALPN and serves HTTP/1.1 to a client that asks for it, with the same handler', async () => {
    const url = await start(answer);
    const session = h2(url);
    expect(await h2get(session, {})).toEqual({ status: 200, body: 'hello 2.0' });
    expect(session.alpnProtocol).toBe('h2');
    expect(session.remoteSettings).toMatchObject({ maxConcurrentStreams: 4, maxHeaderListSize: 4096 });
    expect(await h1get(url)).toEqual({ status: 200, httpVersion: '1.1', body: 'hello 1.1' });
  });

  it('refuses HTTP/2 streams past maxConcurrentStreams, and the handler never sees more at once', async () => {
    const held: ServerResponse[] = [];
    let maxActive = 0;
    const url = await start((_req, res) => {
      held.push(res);
      maxActive = Math.max(maxActive, held.length);
      if (held.length === 4) setImmediate(() => held.splice(0).forEach((r) => r.end('done')));
    });
    const session = h2(url);
    // Sent in the client's first flight, before it has read the server's SETTINGS: a client ignoring the limit.
    const results = await Promise.all(Array.from({ length: 10 }, () => h2get(session, {})));
    expect(results.filter((r) => r.status === 200)).toHaveLength(4);
    expect(results.filter((r) => r.rstCode === constants.NGHTTP2_REFUSED_STREAM)).toHaveLength(6);
    expect(maxActive).toBe(4);
  });

  it('resets an HTTP/2 header list above maxHeaderBytes (ENHANCE_YOUR_CALM) and answers 431 on HTTP/1.1', async () => {
    const url = await start(answer);
    const session = h2(url);
    await h2get(session, {}); // SETTINGS exchanged
    const big = await h2get(session, { 'x-big': 'a'.repeat(5000) });
    expect(big.rstCode).toBe(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    expect(big.status).toBeUndefined();
    expect((await h2get(session, {})).status).toBe(200);
    expect((await h1get(url, { 'x-big': 'a'.repeat(5000) })).status).toBe(431);
  });

  it('closes an HTTP/2 connection that completes no request within the headers timeout, and one idle past the keep-alive timeout', async () => {
    const url = await start(answer);
    const silent = h2(url);
    const startedMs = Date.now();
    await new Promise((resolve) => silent.once('close', resolve));
    const silentMs = Date.now() - startedMs;
    expect(silentMs).toBeGreaterThanOrEqual(LIMITS.headersTimeoutMs - 50);
    expect(silentMs).toBeLessThan(LIMITS.headersTimeoutMs + 1_500);

    const idle = h2(url);
    expect((await h2get(idle, {})).status).toBe(200);
    const idleFromMs = Date.now();
    await new Promise((resolve) => idle.once('close', resolve));
    expect(Date.now() - idleFromMs).toBeLessThan(LIMITS.keepAliveTimeoutMs + 1_500);
  });

  it('answers 408 to an HTTP/2 request whose body does not end within the request timeout', async () => {
    const url = await start((req, res) => {
      req.resume();
      req.on('end', () => res.end('read'));
    });
    const session = h2(url);
    const startedMs = Date.now();
    const trickled = await h2get(session, { ':method': 'POST' }, 'partial body');
    expect(trickled.status).toBe(408);
    expect(Date.now() - startedMs).toBeLessThan(LIMITS.requestTimeoutMs + 1_500);
  });

  it('refuses a certificate and key that do not belong together, naming both files', () => {
    const other = fixtures.issue('mismatch', '2002');
    let error: unknown;
    try {
      loadTlsPair({ certFile: fixtures.certFile, keyFile: other.keyFile });
    } catch (err) {
      error = err;
    }
    expect(isMetasyncError(error, 'METASYNC_ERR_CONFIG_INVALID')).toBe(true);
    expect((error as Error).message).toContain(fixtures.certFile);
    expect((error as Error).message).toContain(other.keyFile);
  });

  it('installs a renewed pair for new connections, and keeps the current one when the new files do not make a pair', async () => {
    const certFile = `${fixtures.dir}/live.pem`;
    const keyFile = `${fixtures.dir}/live.key`;
    await copyFile(fixtures.certFile, certFile);
    await copyFile(fixtures.keyFile, keyFile);
    const logger = fakeLogger();
    const url = await start(answer, { files: { certFile, keyFile }, reloadIntervalMs: 50, logger });
    expect(await peerSerial(url)).toBe('1001');

    const renewed = fixtures.issue('renewed', '3003');
    await copyFile(renewed.certFile, certFile);
    await copyFile(renewed.keyFile, keyFile);
    await waitUntil(async () => (await peerSerial(url)) === '3003');
    expect(logger.info).toHaveBeenCalledWith(
      expect.objectContaining({ serial: '3003', previousSerial: '1001' }),
      'tls certificate reloaded',
    );

    // A certificate whose key is another one's: refused, logged, the renewed pair stays.
    await copyFile(fixtures.issue('broken', '4004').certFile, certFile);
    await waitUntil(() => logger.error.mock.calls.length > 0);
    const [fields, message] = logger.error.mock.calls[0] as [{ err: { code: string }; serial: string }, string];
    expect(message).toBe('tls certificate reload failed, keeping the current one');
    expect(fields.err.code).toBe('METASYNC_ERR_TLS_RELOAD_FAILED');
    expect(fields.serial).toBe('3003');
    expect(await peerSerial(url)).toBe('3003');
    expect((await h1get(url)).status).toBe(200);
    await writeFile(keyFile, await readFile(`${fixtures.dir}/broken.key`));
    await waitUntil(async () => (await peerSerial(url)) === '4004');
  });
});

/** Polls with a deadline (real I/O: files and sockets), bounded in count. */
async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000; i++) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
