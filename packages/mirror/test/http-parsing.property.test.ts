import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIRROR_HTTP_LIMITS } from '../src/serve/http-limits.js';
import { syncedTestMirror, type Cleanups } from './synced-mirror.js';

/**
 * Generated request bytes (several requests on one connection, malformed,
 * folded, smuggling-shaped, half-closed or not) sent to a mirror and to a plain `node:http` server with
 * the same limits: the status lines the parser decides (400, 413, 431, 505...)
 * and whether the connection is closed must be the same. Which status a
 * well-formed request gets is the mirror's business (200, 304, 404, 405...);
 * that it is parsed, answered in order and its connection handled as Node
 * does is what this checks.
 */
const cleanups: Cleanups = [];
let mirrorPort: number;
let plain: Server;
let plainPort: number;

beforeAll(async () => {
  const { mirror } = await syncedTestMirror(
    { 'packages.json': '{"packages":[]}', 'p2/acme/foo.json': '{"packages":{"acme/foo":[]}}', healthz: 'stored' },
    ['--proxy-timeout-ms', '300'],
    cleanups,
  );
  await mirror.app.listen({ host: '127.0.0.1', port: 0 });
  mirrorPort = (mirror.app.server.address() as AddressInfo).port;
  const limits = MIRROR_HTTP_LIMITS;
  plain = createServer({ maxHeaderSize: limits.maxHeaderBytes }, (req, res) => {
    req.resume();
    // A length, as every mirror answer has (HTTP/1.0 keep-alive needs one).
    res.writeHead(200, { 'content-length': '3' }).end('ok\n');
  });
  plain.headersTimeout = limits.headersTimeoutMs;
  plain.requestTimeout = limits.requestTimeoutMs;
  plain.keepAliveTimeout = limits.keepAliveTimeoutMs;
  plain.maxRequestsPerSocket = limits.maxRequestsPerSocket;
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  plainPort = (plain.address() as AddressInfo).port;
}, 20_000);

afterAll(async () => {
  plain?.closeAllConnections();
  await new Promise<void>((resolve) => (plain === undefined ? resolve() : plain.close(() => resolve())));
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Statuses Node's parser and server produce themselves; any other status is the application's answer. */
const PARSER_STATUSES = new Set(['400', '408', '413', '414', '431', '501', '505']);
/** Each write waits for the server to go quiet (or close) first, so a fast and a slow handler see the same byte stream. */
const QUIET_MS = 80;
const CAP_MS = 2_500;

interface Outcome {
  statuses: string[];
  closed: boolean;
}

/**
 * Sends each chunk in turn, waiting until the server is quiet for QUIET_MS (or closes) after each;
 * then FIN if `halfClose`, and waits again. CAP_MS bounds the whole exchange.
 */
async function exchange(port: number, chunks: string[], halfClose: boolean): Promise<Outcome> {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  let closed = false;
  let lastEventMs = performance.now();
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
    lastEventMs = performance.now();
  });
  socket.on('error', () => undefined);
  const closedPromise = new Promise<void>((resolve) =>
    socket.on('close', () => {
      closed = true;
      resolve();
    }),
  );
  const deadline = performance.now() + CAP_MS;
  const settle = async (): Promise<void> => {
    lastEventMs = performance.now();
    while (!closed && performance.now() < deadline && performance.now() - lastEventMs < QUIET_MS)
      await Promise.race([closedPromise, new Promise((resolve) => setTimeout(resolve, 10))]);
  };
  await new Promise<void>((resolve) => {
    socket.once('connect', () => resolve());
    socket.once('close', () => resolve());
  });
  for (const chunk of chunks) {
    if (closed) break;
    socket.write(chunk, 'latin1');
    await settle();
  }
  if (halfClose && !closed) {
    socket.end();
    // Node closes a half-closed connection once its answers are written: well within the cap.
    while (!closed && performance.now() < deadline) await Promise.race([closedPromise, new Promise((resolve) => setTimeout(resolve, 10))]);
  }
  const closedByServer = closed;
  socket.destroy();
  await closedPromise;
  const statuses = (text.match(/HTTP\/1\.[01] \d{3}/g) ?? []).map((line) => {
    const status = line.slice(-3);
    return PARSER_STATUSES.has(status) ? status : 'answered';
  });
  return { statuses, closed: closedByServer };
}

/** Mostly well-formed requests (so connection handling after answers is exercised), some malformed. */
const requestArb = fc
  .record({
    method: fc.oneof({ arbitrary: fc.constantFrom('GET', 'HEAD'), weight: 8 }, fc.constantFrom('POST', 'OPTIONS', 'get', 'BREW', 'G ET')),
    target: fc.constantFrom('/p2/acme/foo.json', '/packages.json', '/healthz', '/sync/v1/state', '/p2/acme/foo.json?x=1', '/'),
    version: fc.oneof({ arbitrary: fc.constant('HTTP/1.1'), weight: 6 }, fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1 ', 'http/1.1')),
    headers: fc.subarray(
      ['Connection: close', 'Connection: keep-alive', 'Proxy-Connection: close', 'Accept-Encoding: gzip', 'If-None-Match: "x"'],
      {
        maxLength: 2,
      },
    ),
    odd: fc.option(
      fc.constantFrom(
        `X: a${' '.repeat(15_000)}b`,
        `X-Big: ${'b'.repeat(17_000)}`,
        ' folded',
        'Bad Header: x',
        'X:\u0001',
        'Host: other',
        'Content-Length: 3',
        'Transfer-Encoding: chunked',
        'Expect: 100-continue',
        'Upgrade: h2c',
      ),
      { freq: 3 },
    ),
    host: fc.oneof({ arbitrary: fc.constant(true), weight: 8 }, fc.constant(false)),
    lineEnd: fc.oneof({ arbitrary: fc.constant('\r\n'), weight: 8 }, fc.constant('\n')),
    body: fc.oneof({ arbitrary: fc.constant(''), weight: 4 }, fc.constantFrom('abc', '0\r\n\r\n', '3\r\nabc\r\n0\r\n\r\n')),
  })
  .map(({ method, target, version, headers, odd, host, lineEnd, body }) => {
    const lines = [`${method} ${target} ${version}`, ...(host ? ['Host: m'] : []), ...headers, ...(odd === null ? [] : [odd])];
    return body === '' ? [lines.join(lineEnd) + lineEnd + lineEnd] : [lines.join(lineEnd) + lineEnd + lineEnd, body];
  });

describe('mirror HTTP parsing and connection handling', () => {
  it("agree with a plain node:http server's on generated request bytes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(requestArb, { minLength: 1, maxLength: 3 }), fc.boolean(), async (requests, halfClose) => {
        const chunks = requests.flat();
        const [mirrorOutcome, plainOutcome] = await Promise.all([
          exchange(mirrorPort, chunks, halfClose),
          exchange(plainPort, chunks, halfClose),
        ]);
        const shown = JSON.stringify(chunks.map((chunk) => chunk.slice(0, 200)));
        expect(mirrorOutcome, `${shown} halfClose=${halfClose}`).toEqual(plainOutcome);
      }),
      { numRuns: 60, interruptAfterTimeLimit: 30_000, seed: 11 },
    );
  }, 40_000);
});
