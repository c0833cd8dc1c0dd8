import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type Mirror } from '../src/mirror.js';
import { syncedTestMirror } from './synced-mirror.js';

/** Pipelined, split and body-carrying requests over real sockets, parsed by Node: answers in order, the stream kept in step, shutdown. */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const FOO = '{"packages":{"acme/foo":[{"version":"1.0.0"}]}}';

async function servingMirror(): Promise<{ mirror: Mirror; port: number }> {
  const { mirror } = await syncedTestMirror(
    { 'packages.json': '{"packages":[]}', 'p2/acme/foo.json': FOO },
    ['--proxy-timeout-ms', '300'],
    cleanups,
  );
  const base = await mirror.app.listen({ host: '127.0.0.1', port: 0 });
  return { mirror, port: Number(new URL(base).port) };
}

/** Opens a socket and collects everything it receives until `until` matches or it closes. */
function rawClient(port: number): {
  socket: Socket;
  received: () => string;
  waitFor: (until: (text: string) => boolean) => Promise<string>;
  closed: Promise<void>;
} {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  const waiters: { until: (text: string) => boolean; resolve: (text: string) => void }[] = [];
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
    for (const waiter of waiters.splice(0)) {
      if (waiter.until(text)) waiter.resolve(text);
      else waiters.push(waiter);
    }
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  cleanups.push(async () => {
    socket.destroy();
    await closed;
  });
  return {
    socket,
    received: () => text,
    closed,
    waitFor: (until) =>
      new Promise((resolve, reject) => {
        if (until(text)) return resolve(text);
        const timer = setTimeout(() => reject(new Error(`timed out; received so far: ${JSON.stringify(text.slice(0, 2000))}`)), 3_000);
        waiters.push({ until, resolve: (value) => (clearTimeout(timer), resolve(value)) });
      }),
  };
}

const statusLines = (text: string): string[] => text.match(/HTTP\/1\.1 \d{3}[^\r]*/g) ?? [];

describe('mirror connections', () => {
  it('answers pipelined requests in order, handing the connection to node at the first it does not take', async () => {
    const { port } = await servingMirror();
    const client = rawClient(port);
    client.socket.write(
      'GET /p2/acme/foo.json HTTP/1.1\r\nHost: m\r\n\r\n' +
        'HEAD /packages.json HTTP/1.1\r\nHost: m\r\n\r\n' +
        // Not in the index, reserved: node and fastify answer 404.
        'GET /sync/v1/state HTTP/1.1\r\nHost: m\r\n\r\n' +
        'GET /p2/acme/foo.json HTTP/1.1\r\nHost: m\r\n\r\n',
    );
    const text = await client.waitFor((t) => statusLines(t).length === 4 && t.endsWith(FOO));
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 404 Not Found', 'HTTP/1.1 200 OK']);
    expect(text.split(FOO)).toHaveLength(3);
  });

  it('answers a request head that arrives a few bytes at a time (node takes the connection over)', async () => {
    const { port } = await servingMirror();
    const client = rawClient(port);
    const request = 'GET /p2/acme/foo.json HTTP/1.1\r\nHost: m\r\nAccept-Encoding: identity\r\n\r\n';
    for (let i = 0; i < request.length; i += 7) {
      client.socket.write(request.slice(i, i + 7));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const text = await client.waitFor((t) => t.endsWith(FOO));
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
    expect(text).toMatch(/\r\ncontent-length: \d+\r\n/i);
    expect(text).toMatch(/\r\ndate: .+ GMT\r\n/i);
  });

  it('leaves a request smuggling a body to node, which answers it and keeps the stream in step', async () => {
    const { port } = await servingMirror();
    const client = rawClient(port);
    // A GET with a body: the front must not read "GET /p2..." inside the body as a second request.
    const body = 'GET /p2/acme/foo.json HTTP/1.1\r\nHost: m\r\n\r\n';
    client.socket.write(`GET /packages.json HTTP/1.1\r\nHost: m\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    const text = await client.waitFor((t) => statusLines(t).length >= 1 && t.includes('{"packages":[]}'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(statusLines(client.received())).toEqual(['HTTP/1.1 200 OK']);
    expect(text).not.toContain(FOO);
  });

  it('closes idle kept-alive connections when the mirror shuts down, without waiting for their timeout', async () => {
    const { mirror, port } = await servingMirror();
    const client = rawClient(port);
    client.socket.write('GET /p2/acme/foo.json HTTP/1.1\r\nHost: m\r\n\r\n');
    await client.waitFor((t) => t.endsWith(FOO));
    const started = Date.now();
    await mirror.close();
    await client.closed;
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
