import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type Mirror } from '../src/mirror.js';
import { syncedTestMirror } from './synced-mirror.js';

/**
 * Crafted clients against a listening mirror: every request is parsed by
 * Node's own parser, with Node's connection handling and the documented limits.
 */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const FOO = '{"packages":{"acme/foo":[{"version":"1.0.0"}]}}';
const SHADOW = 'THIS-IS-REPOSITORY-CONTENT';
/** Incompressible, larger than a socket buffer: a reader that stops reading leaves it queued. */
const BIG = randomBytes(525 * 1024).toString('base64');

async function servingMirror(args: string[] = []): Promise<{ mirror: Mirror; port: number }> {
  const { mirror } = await syncedTestMirror(
    {
      'packages.json': '{"packages":[]}',
      'p2/acme/foo.json': FOO,
      'p2/acme/big.json': BIG,
      // Existing data at the daemons' own paths (older primaries published such files).
      'health/fresh': SHADOW,
      'health/other': SHADOW,
      healthz: SHADOW,
      metrics: SHADOW,
      status: SHADOW,
    },
    ['--proxy-timeout-ms', '300', ...args],
    cleanups,
  );
  const base = await mirror.app.listen({ host: '127.0.0.1', port: 0 });
  return { mirror, port: Number(new URL(base).port) };
}

interface RawClient {
  socket: Socket;
  received: () => string;
  /** Status lines received so far. */
  answers: () => number;
  /** Resolves with the time (performance.now()) the server closed the connection. */
  closedAt: Promise<number>;
}

function rawClient(port: number): RawClient {
  const socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  let text = '';
  let tail = '';
  let answers = 0;
  socket.on('data', (chunk: Buffer) => {
    const latin1 = chunk.toString('latin1');
    if (text.length < 4096) text += latin1;
    const scanned = tail + latin1;
    answers += statusLines(scanned).length - statusLines(tail).length;
    tail = scanned.slice(-40);
  });
  socket.on('error', () => undefined);
  const closedAt = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
  cleanups.push(async () => {
    socket.destroy();
    await closedAt;
  });
  return { socket, received: () => text, answers: () => answers, closedAt };
}

/** Resolves with the first value, or 'timeout' after `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms))),
  ]);
}

function get(
  port: number,
  path: string,
  agent: Agent,
  acceptEncoding = 'gzip',
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, headers: { 'accept-encoding': acceptEncoding }, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

const statusLines = (text: string): string[] => text.match(/HTTP\/1\.1 \d{3}[^\r]*/g) ?? [];

describe('mirror edge against crafted clients', () => {
  it("keeps another client's latency bounded while one sends headers with long runs of inner spaces", async () => {
    const { port } = await servingMirror();
    const attacker = rawClient(port);
    const head = `GET /p2/acme/foo.json HTTP/1.1\r\nHost: m\r\nX: a${' '.repeat(15_000)}b\r\n\r\n`;
    let attacks = 0;
    const deadline = performance.now() + 1_500;
    const attack = (async () => {
      while (performance.now() < deadline && attacks < 400) {
        attacker.socket.write(head);
        attacks += 1;
        // One at a time: wait for this answer before sending the next.
        for (let i = 0; i < 500 && attacker.answers() < attacks; i++) await new Promise((resolve) => setTimeout(resolve, 1));
      }
    })();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(async () => agent.destroy());
    const latencies: number[] = [];
    await new Promise((resolve) => setTimeout(resolve, 50));
    while (performance.now() < deadline && latencies.length < 300) {
      const t0 = performance.now();
      const { status } = await get(port, '/p2/acme/foo.json', agent);
      expect(status).toBe(200);
      latencies.push(performance.now() - t0);
    }
    await attack;
    latencies.sort((a, b) => a - b);
    const p90 = latencies[Math.floor(latencies.length * 0.9)] ?? Infinity;
    // Node's parser is linear: a 15 KB header costs microseconds. A quadratic trim cost 134-319 ms per request.
    expect(p90, `p90 ${p90.toFixed(1)} ms over ${latencies.length} requests during ${attacks} attacks`).toBeLessThan(60);
    expect(attacks).toBeGreaterThan(3);
    expect(latencies.length).toBeGreaterThan(10);
  });

  it('holds no more than a few answers for a client that pipelines one request per segment and never reads', async () => {
    const { port } = await servingMirror(['--hot-cache-bytes', '0']);
    const client = rawClient(port);
    await new Promise<void>((resolve) => client.socket.once('connect', () => resolve()));
    client.socket.pause();
    // Warm the mirror's own buffers before the baseline.
    const warm = await get(port, '/p2/acme/big.json', new Agent({ keepAlive: false }), 'identity');
    expect(warm.body).toBe(BIG);
    const before = process.memoryUsage();
    for (let i = 0; i < 150; i++) {
      if (client.socket.destroyed) break;
      client.socket.write('GET /p2/acme/big.json HTTP/1.1\r\nHost: m\r\nAccept-Encoding: identity\r\n\r\n');
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    const after = process.memoryUsage();
    const grownMb = (after.arrayBuffers - before.arrayBuffers) / 1024 / 1024;
    // 150 answers of 700 KB queued would be ~105 MB; Node stops reading while one answer waits.
    expect(grownMb, `external memory grew ${grownMb.toFixed(1)} MB`).toBeLessThan(30);
  });

  it('applies --http-max-requests-per-socket to every request', async () => {
    const { port } = await servingMirror(['--http-max-requests-per-socket', '2']);
    const client = rawClient(port);
    const req = 'GET /p2/acme/foo.json HTTP/1.1\r\nHost: m\r\n\r\n';
    for (let sent = 1; sent <= 3; sent++) {
      client.socket.write(req);
      for (let i = 0; i < 300 && client.answers() < sent; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // Node's handling: the last allowed answer says close; a request past it gets 503.
    const answers = client.received().split('HTTP/1.1 ').slice(1);
    expect(answers.map((answer) => answer.slice(0, 3))).toEqual(['200', '200', '503']);
    expect(answers[1]).toMatch(/\r\nconnection: close\r\n/i);
  });

  it('closes the connection promptly after answering a client that half-closed', async () => {
    const { port } = await servingMirror();
    const client = rawClient(port);
    const sentAt = performance.now();
    client.socket.end('GET /p2/acme/foo.json HTTP/1.1\r\nHost: m\r\n\r\n');
    const closed = await within(client.closedAt, 2_000);
    expect(closed).not.toBe('timeout');
    expect((closed as number) - sentAt).toBeLessThan(2_000);
    expect(statusLines(client.received())).toEqual(['HTTP/1.1 200 OK']);
    expect(client.received().endsWith(FOO)).toBe(true);
  });

  it('closes the connection after answering a request with Proxy-Connection: close', async () => {
    const { port } = await servingMirror();
    const client = rawClient(port);
    client.socket.write('GET /p2/acme/foo.json HTTP/1.1\r\nHost: m\r\nProxy-Connection: close\r\n\r\n');
    expect(await within(client.closedAt, 2_000)).not.toBe('timeout');
    expect(statusLines(client.received())).toEqual(['HTTP/1.1 200 OK']);
  });

  it("answers the mirror's own routes, never repository content stored at their paths", async () => {
    const { port } = await servingMirror();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(async () => agent.destroy());
    // Twice each: the second request meets whatever the first one memoised.
    for (let round = 0; round < 2; round++) {
      const fresh = await get(port, '/health/fresh', agent);
      expect(fresh.body).not.toContain(SHADOW);
      expect([200, 503]).toContain(fresh.status);
      const healthz = await get(port, '/healthz', agent);
      expect(healthz).toMatchObject({ status: 200, body: 'ok\n' });
      const metrics = await get(port, '/metrics', agent);
      expect(metrics.status).toBe(200);
      expect(metrics.body).toContain('metasync_');
      for (const path of ['/health/other', '/status', '/healthz/x', '/metrics/x']) {
        const other = await get(port, path, agent);
        expect(other.body, path).not.toContain(SHADOW);
        expect(other.status, path).toBe(404);
      }
    }
    // Raw, with the headers an answer depends on (a fast path must not take these either).
    const client = rawClient(port);
    client.socket.end(
      'HEAD /healthz HTTP/1.1\r\nHost: m\r\nAccept-Encoding: br, gzip\r\nIf-None-Match: "x"\r\n\r\n' +
        'GET /health/fresh HTTP/1.1\r\nHost: m\r\nIf-Modified-Since: Thu, 01 Jan 2037 00:00:00 GMT\r\n\r\n',
    );
    expect(await within(client.closedAt, 2_000)).not.toBe('timeout');
    expect(client.received()).not.toContain(SHADOW);
    expect(client.received()).not.toMatch(/ 304 /);
  });
});
