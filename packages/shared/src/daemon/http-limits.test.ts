import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { parseOptions } from './cli-options.js';
import {
  createLimitedHttpServer,
  HTTP_LIMITS_SCHEMA_SHAPE,
  httpLimitOptions,
  pickHttpLimits,
  type HttpServerLimits,
} from './http-limits.js';
import type { Logger } from './logger.js';

const DEFAULTS: HttpServerLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 10_000,
  maxHeaderBytes: 16_384,
  maxConnections: 100,
  maxRequestsPerSocket: 0,
  socketTimeoutMs: 60_000,
  maxConcurrentStreams: 100,
  maxPipelinedRequests: 4,
};
const schema = z.object(HTTP_LIMITS_SCHEMA_SHAPE);

function parse(argv: string[], env: NodeJS.ProcessEnv = {}) {
  return schema.safeParse(parseOptions('test', 'test', httpLimitOptions(DEFAULTS), argv, env).raw);
}

describe('http limit options', () => {
  it('defaults to the daemon-given values, and a flag wins over its METASYNC_HTTP_* twin', () => {
    const defaults = parse([]);
    expect(defaults.success && pickHttpLimits(defaults.data)).toEqual(DEFAULTS);
    const tuned = parse(['--http-max-connections', '7'], { METASYNC_HTTP_MAX_CONNECTIONS: '9', METASYNC_HTTP_HEADERS_TIMEOUT_MS: '2500' });
    expect(tuned.success && pickHttpLimits(tuned.data)).toMatchObject({ maxConnections: 7, headersTimeoutMs: 2_500 });
  });

  it('refuses zero connections, sub-100 ms timeouts and tiny header limits', () => {
    const result = parse(['--http-max-connections', '0', '--http-headers-timeout-ms', '5', '--http-max-header-bytes', '10']);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((issue) => issue.path[0]).sort()).toEqual([
      'httpHeadersTimeoutMs',
      'httpMaxConnections',
      'httpMaxHeaderBytes',
    ]);
  });
});

describe('createLimitedHttpServer', () => {
  const sockets: Socket[] = [];
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    vi.useRealTimers();
    for (const socket of sockets.splice(0)) socket.destroy();
    await close?.();
    close = undefined;
  });

  it('sets the limits on the node server', () => {
    const logger = { warn: vi.fn() } as unknown as Logger;
    const server = createLimitedHttpServer({
      limits: { ...DEFAULTS, maxRequestsPerSocket: 50 },
      logger,
      handler: (_req, res) => res.end(),
    });
    expect({
      headers: server.headersTimeout,
      request: server.requestTimeout,
      keepAlive: server.keepAliveTimeout,
      max: server.maxConnections,
      perSocket: server.maxRequestsPerSocket,
      socket: server.timeout,
    }).toEqual({
      headers: 10_000,
      request: 30_000,
      keepAlive: 10_000,
      max: 100,
      perSocket: 50,
      socket: 60_000,
    });
  });

  it('serves up to maxPipelinedRequests pipelined requests and destroys a connection that queues more', async () => {
    const server = createLimitedHttpServer({
      limits: DEFAULTS,
      logger: { warn: vi.fn() } as unknown as Logger,
      handler: (_req, res) => void setTimeout(() => res.end('ok'), 20),
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    close = () => new Promise((resolve) => server.close(() => resolve()));
    const { port } = server.address() as AddressInfo;
    const pipeline = (count: number): Promise<{ responses: number; closed: boolean }> =>
      new Promise((resolve) => {
        const socket = connect(port, '127.0.0.1');
        sockets.push(socket);
        let text = '';
        const count200 = (): number => text.split('HTTP/1.1 200 ').length - 1;
        socket.on('error', () => undefined);
        socket.on('data', (chunk: Buffer) => {
          text += chunk.toString('latin1');
          if (count200() === count) resolve({ responses: count, closed: false });
        });
        socket.on('close', () => resolve({ responses: count200(), closed: true }));
        socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(count));
      });
    expect(await pipeline(4)).toEqual({ responses: 4, closed: false });
    const flood = await pipeline(40);
    expect(flood.closed).toBe(true);
    expect(flood.responses).toBeLessThan(40);
  });

  it('refuses connections past maxConnections, warning once and then once per window with the count', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const warn = vi.fn();
    const server = createLimitedHttpServer({
      limits: { ...DEFAULTS, maxConnections: 1 },
      logger: { warn } as unknown as Logger,
      handler: (_req, res) => res.end(),
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    close = () => new Promise((resolve) => server.close(() => resolve()));
    const { port } = server.address() as AddressInfo;
    const closedByServer: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      const socket = connect(port, '127.0.0.1');
      sockets.push(socket);
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      await new Promise<void>((resolve) => {
        // A refused socket closes at once; the first one stays open: give each 200 ms (real time).
        const timer = globalThis.setInterval(() => {
          globalThis.clearInterval(timer);
          resolve();
        }, 200);
        socket.once('close', () => {
          globalThis.clearInterval(timer);
          resolve();
        });
      });
      closedByServer.push(socket.destroyed);
    }
    expect(closedByServer).toEqual([false, true, true, true]);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]?.[1]).toBe('connection refused: max connections reached');
    vi.advanceTimersByTime(10_000);
    expect(warn).toHaveBeenCalledTimes(2);
    expect(warn.mock.calls[1]).toEqual([
      { maxConnections: 1, dropped: 2, windowMs: 10_000 },
      'connections refused: max connections reached',
    ]);
  });
});
