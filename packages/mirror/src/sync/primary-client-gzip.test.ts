import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrimaryClient, type PrimaryClient } from './primary-client.js';

/** A primary answering each route with the bytes given, labelled gzip whatever they are. */
const bodies = new Map<string, Buffer>();
let server: Server;
let client: PrimaryClient;

beforeAll(async () => {
  server = createServer((request, response) => {
    const body = bodies.get(request.url ?? '') ?? Buffer.alloc(0);
    response.writeHead(200, { 'content-encoding': 'gzip', 'content-length': body.length });
    response.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  client = createPrimaryClient({
    primaryUrl: `http://127.0.0.1:${port}`,
    mirrorId: 'gz',
    connections: 2,
    connectTimeoutMs: 1_000,
    requestTimeoutMs: 5_000,
  });
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

// Random bytes do not compress: above 256 KiB they are inflated on the threadpool, below it inline.
const small = randomBytes(10_000);
const large = randomBytes(400_000);

describe('a gzipped sync answer, small (inflated inline) or large (on the threadpool)', () => {
  it('is inflated to the bytes the primary compressed', async () => {
    bodies.set('/small', gzipSync(small));
    bodies.set('/large', gzipSync(large));
    expect((await client.get('/small')).body.equals(small)).toBe(true);
    expect((await client.get('/large')).body.equals(large)).toBe(true);
  });

  it('is refused as a protocol error when its bytes are not gzip or are cut short', async () => {
    const cut = gzipSync(large);
    bodies.set('/small-garbage', randomBytes(5_000));
    bodies.set('/large-cut', cut.subarray(0, cut.length - 100));
    for (const route of ['/small-garbage', '/large-cut'])
      await expect(client.get(route), route).rejects.toMatchObject({ code: 'METASYNC_ERR_SYNC_PROTOCOL', message: /does not gunzip/ });
  });

  it('is refused when it would inflate beyond maxBytes (a gzip bomb), on either path', async () => {
    bodies.set('/small-bomb', gzipSync(Buffer.alloc(4_000_000)));
    bodies.set('/large-bomb', gzipSync(Buffer.concat([large, Buffer.alloc(4_000_000)])));
    for (const route of ['/small-bomb', '/large-bomb'])
      await expect(client.get(route, { maxBytes: 1_000_000 }), route).rejects.toMatchObject({
        code: 'METASYNC_ERR_SYNC_PROTOCOL',
        message: /does not gunzip/,
      });
  });
});
