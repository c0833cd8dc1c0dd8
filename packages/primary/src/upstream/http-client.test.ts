import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { createUpstreamHttp, parseRetryAfterMs } from './http-client.js';

const log = { debug: () => undefined } as unknown as Parameters<typeof createUpstreamHttp>[0]['log'];
const servers: Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

/** A loopback server answering each request with the next handler (the last one repeats). */
async function serve(handlers: Array<(res: import('node:http').ServerResponse) => void>): Promise<{ url: string; hits: () => number }> {
  let hits = 0;
  const server = createServer((_req, res) => handlers[Math.min(hits++, handlers.length - 1)]!(res));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/x.json`, hits: () => hits };
}

describe('upstream http client', () => {
  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfterMs('3', 0)).toBe(3_000);
    expect(parseRetryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(parseRetryAfterMs('soon', 0)).toBeUndefined();
    expect(parseRetryAfterMs(undefined, 0)).toBeUndefined();
  });

  it('retries 429 and 5xx, then answers the decoded body with its Last-Modified', async () => {
    const body = Buffer.from('{"ok":true}');
    const server = await serve([
      (res) => res.writeHead(429, { 'retry-after': '0' }).end(),
      (res) => res.writeHead(503).end(),
      (res) => res.writeHead(200, { 'content-encoding': 'gzip', 'last-modified': new Date(5_000).toUTCString() }).end(gzipSync(body)),
    ]);
    const retried: string[] = [];
    const http = createUpstreamHttp({ concurrency: 2, timeoutMs: 2_000, log, retryBaseMs: 1, onRetry: (r) => retried.push(r) });
    try {
      const answer = await http.get(server.url);
      expect(answer).toEqual({ status: 200, body, lastModifiedMs: 5_000 });
      expect(retried).toEqual(['status-429', 'status-503']);
    } finally {
      await http.close();
    }
  });

  it('gives up with METASYNC_ERR_UPSTREAM_UNREACHABLE after maxAttempts, naming the URL', async () => {
    const server = await serve([(res) => res.writeHead(500).end()]);
    const http = createUpstreamHttp({ concurrency: 1, timeoutMs: 2_000, log, retryBaseMs: 1, maxAttempts: 3 });
    try {
      await expect(http.get(server.url)).rejects.toMatchObject({ code: 'METASYNC_ERR_UPSTREAM_UNREACHABLE', details: { url: server.url } });
      expect(server.hits()).toBe(3);
    } finally {
      await http.close();
    }
  });

  it('refuses a body larger than maxBodyBytes without retrying', async () => {
    const server = await serve([(res) => res.writeHead(200).end(Buffer.alloc(4096, 97))]);
    const http = createUpstreamHttp({ concurrency: 1, timeoutMs: 2_000, log, retryBaseMs: 1, maxBodyBytes: 1024 });
    try {
      await expect(http.get(server.url)).rejects.toMatchObject({ code: 'METASYNC_ERR_UPSTREAM_INVALID' });
      expect(server.hits()).toBe(1);
    } finally {
      await http.close();
    }
  });
});
