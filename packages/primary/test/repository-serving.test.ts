import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { HEADERS, formatHttpDate, proxyAnswerMessage, readProxyAnswerHeaders, sha256Hex, verifyBody } from '@metasync/shared';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { publish, startTestPrimary, type TestPrimary } from './primary-fixture.js';

let primary: TestPrimary;
afterEach(async () => {
  await primary.close();
});

const P2 = '{"packages":{"acme/foo":[{"name":"acme/foo","version":"1.0.0"}]},"minified":"composer/2.0"}';
/** Compressible enough that the store keeps both a brotli and a gzip variant. */
const LARGE_P2 = JSON.stringify({
  packages: { 'acme/foo': Array.from({ length: 20 }, (_, n) => ({ name: 'acme/foo', version: `1.0.${n}`, description: 'A package' })) },
  minified: 'composer/2.0',
});

describe('repository serving', () => {
  it('answers GET / with a plain-text page on how to use the repository, not a path error', async () => {
    primary = await startTestPrimary();
    const response = await primary.app.inject({ url: '/' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(response.body).toContain('composer config repositories.metasync composer');
    expect(response.body).toContain('/status');
  });

  it('serves a published file with exact Last-Modified, content-hash ETag, type and cache headers', async () => {
    primary = await startTestPrimary();
    await publish(primary, 'p2/acme/foo.json', P2);
    const entry = primary.core.publisher.getEntry('p2/acme/foo.json')!;
    const response = await primary.app.inject({ url: '/p2/acme/foo.json' });
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe(P2);
    expect(response.headers).toMatchObject({
      etag: `"${sha256Hex(P2)}"`,
      'last-modified': formatHttpDate(entry.mtime),
      'content-type': 'application/json',
      vary: 'accept-encoding',
      'cache-control': 'public, max-age=60, stale-while-revalidate=30',
      'x-metasync-seq': '1',
    });
  });

  it('answers If-Modified-Since and If-None-Match with 304', async () => {
    primary = await startTestPrimary();
    await publish(primary, 'p2/acme/foo.json', P2);
    const first = await primary.app.inject({ url: '/p2/acme/foo.json' });
    const byDate = await primary.app.inject({
      url: '/p2/acme/foo.json',
      headers: { 'if-modified-since': first.headers['last-modified'] as string },
    });
    expect(byDate.statusCode).toBe(304);
    expect(byDate.body).toBe('');
    const byTag = await primary.app.inject({ url: '/p2/acme/foo.json', headers: { 'if-none-match': first.headers.etag as string } });
    expect(byTag.statusCode).toBe(304);
    const stale = await primary.app.inject({
      url: '/p2/acme/foo.json',
      headers: { 'if-modified-since': formatHttpDate(Date.parse(first.headers['last-modified'] as string) - 1000) },
    });
    expect(stale.statusCode).toBe(200);
  });

  it('serves the precompressed brotli or gzip variant the client accepts', async () => {
    primary = await startTestPrimary();
    await publish(primary, 'p2/acme/foo.json', LARGE_P2);
    const br = await primary.app.inject({ url: '/p2/acme/foo.json', headers: { 'accept-encoding': 'gzip, deflate, br' } });
    expect(br.headers['content-encoding']).toBe('br');
    expect(brotliDecompressSync(br.rawPayload).toString()).toBe(LARGE_P2);
    const gz = await primary.app.inject({ url: '/p2/acme/foo.json', headers: { 'accept-encoding': 'gzip' } });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.rawPayload).toString()).toBe(LARGE_P2);
  });

  it('serves the raw bytes without content-encoding when the object keeps no compressed variant', async () => {
    primary = await startTestPrimary();
    const tiny = '{"packages":[]}';
    await publish(primary, 'p2/acme/tiny.json', tiny);
    for (const acceptEncoding of ['gzip, deflate, br', 'gzip', 'br']) {
      const response = await primary.app.inject({ url: '/p2/acme/tiny.json', headers: { 'accept-encoding': acceptEncoding } });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-encoding']).toBeUndefined();
      expect(response.headers.vary).toBe('accept-encoding');
      expect(response.body).toBe(tiny);
    }
  });

  it('answers HEAD with the headers and no body', async () => {
    primary = await startTestPrimary();
    await publish(primary, 'packages.json', '{"packages":[],"metadata-url":"/p2/%package%.json"}');
    const head = await primary.app.inject({ method: 'HEAD', url: '/packages.json' });
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers.etag).toBeDefined();
    expect(head.headers['cache-control']).toBe('public, max-age=0, must-revalidate');
  });

  it('signs every 200, whatever the encoding, over path, body hash, head seq and mtime with the active key', async () => {
    primary = await startTestPrimary();
    await publish(primary, 'p2/acme/foo.json', LARGE_P2);
    await publish(primary, 'p2/acme/other.json', P2);
    const entry = primary.core.publisher.getEntry('p2/acme/foo.json')!;
    const keys = primary.core.keyRing.publicKeys();
    for (const [method, acceptEncoding] of [
      ['GET', 'br'],
      ['GET', 'gzip'],
      ['GET', ''],
      ['HEAD', 'gzip'],
    ] as const) {
      const response = await primary.app.inject({ method, url: '/p2/acme/foo.json', headers: { 'accept-encoding': acceptEncoding } });
      const signed = readProxyAnswerHeaders(response.headers);
      expect(signed, `${method} ${acceptEncoding}`).toEqual({
        path: 'p2/acme/foo.json',
        sha256: sha256Hex(LARGE_P2),
        seq: 2,
        mtime: entry.mtime,
        signature: response.headers[HEADERS.signature],
      });
      expect(verifyBody(proxyAnswerMessage(signed!), signed!.signature, { keys, nowMs: Date.now(), what: 'answer' }).keyId).toBe(
        keys[0]!.keyId,
      );
    }
    // A 404 vouches for nothing.
    const missing = await primary.app.inject({ url: '/p2/acme/missing.json' });
    expect(missing.headers[HEADERS.signature]).toBeUndefined();
  });

  it('signs with the new key after a rotation, and signs a path again only when its head or key changed', async () => {
    primary = await startTestPrimary();
    await publish(primary, 'p2/acme/foo.json', P2);
    const first = await primary.app.inject({ url: '/p2/acme/foo.json' });
    const again = await primary.app.inject({ url: '/p2/acme/foo.json' });
    expect(again.headers[HEADERS.signature]).toBe(first.headers[HEADERS.signature]);
    await primary.core.keyRing.rotate({ overlapMs: 60_000 });
    const rotated = await primary.app.inject({ url: '/p2/acme/foo.json' });
    expect(String(rotated.headers[HEADERS.signature]).split('.')[0]).toBe(primary.core.keyRing.active().keyId);
    await publish(primary, 'p2/acme/other.json', P2);
    const later = await primary.app.inject({ url: '/p2/acme/foo.json' });
    expect(later.headers[HEADERS.seq]).toBe('2');
    expect(later.headers[HEADERS.signature]).not.toBe(rotated.headers[HEADERS.signature]);
  });

  it('answers a fast 404 with no-store for an unknown path, and for a deleted one', async () => {
    primary = await startTestPrimary();
    await publish(primary, 'p2/acme/foo.json', P2);
    await primary.core.publisher.submit([{ path: 'p2/acme/foo.json', deleted: true }], 'api');
    for (const url of ['/p2/acme/foo.json', '/p2/acme/unknown.json']) {
      const response = await primary.app.inject({ url });
      expect(response.statusCode).toBe(404);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.json()).toMatchObject({ code: 'METASYNC_ERR_PATH_NOT_FOUND' });
    }
  });

  it.each([
    '/p2/../../etc/passwd',
    '/p2/%2e%2e/%2e%2e/etc/passwd',
    '/p2/..%2f..%2fetc%2fpasswd',
    '/p2/%2E%2E%5C..%5Cetc%5Cpasswd',
    '/p2/acme/foo.json%00.txt',
    '/p2//acme/foo.json',
    '/.git/config',
    '/p2/acme/%zz.json',
  ])('refuses %s over a real socket with 400 and reads nothing', async (url) => {
    primary = await startTestPrimary();
    await publish(primary, 'p2/acme/foo.json', P2);
    const readPreferred = vi.spyOn(primary.core.publisher.store, 'readPreferred');
    const getEntry = vi.spyOn(primary.core.publisher, 'getEntry');
    await primary.app.listen({ host: '127.0.0.1', port: 0 });
    // A real request keeps the raw request target (inject would normalize dot segments away).
    const response = await rawGet((primary.app.server.address() as AddressInfo).port, url);
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body)).toMatchObject({ code: 'METASYNC_ERR_PATH_INVALID' });
    expect(readPreferred).not.toHaveBeenCalled();
    expect(getEntry).not.toHaveBeenCalled();
  });
});

function rawGet(port: number, path: string): Promise<{ statusCode: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}
