import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { HEADERS, generateSigningKeyPem, sha256Hex, signProxyAnswer, signingKeyFromPem } from '@metasync/shared';
import { type Mirror } from '../src/mirror.js';
import { type FakePrimary } from './fake-primary.js';
import { openTestMirror, syncedTestMirror } from './synced-mirror.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const p2Body = JSON.stringify({ packages: { 'acme/foo': [{ version: '1.0.0', description: 'x'.repeat(2000) }] } });

const SHORT_TIMEOUTS = ['--proxy-timeout-ms', '300', '--connect-timeout-ms', '300'];

async function mirrorOf(primaryUrl: string, extra: string[] = []): Promise<Mirror> {
  return (await openTestMirror(primaryUrl, [...SHORT_TIMEOUTS, ...extra], cleanups)).mirror;
}

async function syncedMirror(extra: string[] = []): Promise<{ primary: FakePrimary; mirror: Mirror }> {
  const files = { 'packages.json': '{"packages":[],"metadata-url":"/p2/%package%.json"}', 'p2/acme/foo.json': p2Body };
  return syncedTestMirror(files, [...SHORT_TIMEOUTS, ...extra], cleanups);
}

describe('mirror serving', () => {
  it('answers GET / with a plain-text page on how to use the repository, not a path error', async () => {
    const { mirror } = await syncedMirror();
    const response = await mirror.app.inject({ url: '/' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(response.body).toContain('composer config repositories.metasync composer');
    expect(response.body).toContain('/health/fresh');
  });

  it('serves exact Last-Modified, the hash as ETag, cache headers and the generation', async () => {
    const { mirror } = await syncedMirror();
    const response = await mirror.app.inject({ url: '/p2/acme/foo.json' });
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe(p2Body);
    expect(response.headers.etag).toBe(`"${sha256Hex(p2Body)}"`);
    const entry = mirror.log.state.lookup('p2/acme/foo.json')!;
    expect(response.headers['last-modified']).toBe(new Date(entry.mtime).toUTCString());
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.headers['cache-control']).toContain('max-age=60');
    expect(response.headers.vary).toBe('Accept-Encoding');
    expect(response.headers[HEADERS.seq]).toBe('1');
  });

  it('answers If-None-Match and If-Modified-Since with 304', async () => {
    const { mirror } = await syncedMirror();
    const first = await mirror.app.inject({ url: '/p2/acme/foo.json' });
    const byTag = await mirror.app.inject({ url: '/p2/acme/foo.json', headers: { 'if-none-match': String(first.headers.etag) } });
    expect(byTag.statusCode).toBe(304);
    expect(byTag.body).toBe('');
    const byDate = await mirror.app.inject({
      url: '/p2/acme/foo.json',
      headers: { 'if-modified-since': String(first.headers['last-modified']) },
    });
    expect(byDate.statusCode).toBe(304);
    const older = await mirror.app.inject({ url: '/p2/acme/foo.json', headers: { 'if-modified-since': new Date(0).toUTCString() } });
    expect(older.statusCode).toBe(200);
  });

  it('picks br, gzip or identity by Accept-Encoding, each decoding to the same bytes', async () => {
    const { mirror } = await syncedMirror();
    const br = await mirror.app.inject({ url: '/p2/acme/foo.json', headers: { 'accept-encoding': 'gzip, br' } });
    expect(br.headers['content-encoding']).toBe('br');
    expect(brotliDecompressSync(br.rawPayload).toString()).toBe(p2Body);
    const gz = await mirror.app.inject({ url: '/p2/acme/foo.json', headers: { 'accept-encoding': 'gzip' } });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.rawPayload).toString()).toBe(p2Body);
    expect(Number(gz.headers['content-length'])).toBe(gz.rawPayload.length);
    const plain = await mirror.app.inject({ url: '/p2/acme/foo.json', headers: { 'accept-encoding': 'br;q=0, gzip;q=0' } });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body).toBe(p2Body);
  });

  it('answers HEAD with the headers and length of GET and no body', async () => {
    const { mirror } = await syncedMirror();
    const head = await mirror.app.inject({ method: 'HEAD', url: '/p2/acme/foo.json', headers: { 'accept-encoding': 'gzip' } });
    const get = await mirror.app.inject({ url: '/p2/acme/foo.json', headers: { 'accept-encoding': 'gzip' } });
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers['content-length']).toBe(get.headers['content-length']);
    expect(head.headers.etag).toBe(get.headers.etag);
  });

  it('serves repeat requests from the hot cache, and large objects from disk when the budget is small', async () => {
    const { mirror } = await syncedMirror(['--hot-cache-bytes', '1000']);
    for (let i = 0; i < 3; i++) expect((await mirror.app.inject({ url: '/p2/acme/foo.json' })).body).toBe(p2Body);
    // Answers are counted in plain numbers, folded into the registry when /metrics is scraped.
    const metrics = (await mirror.app.inject({ url: '/metrics' })).body;
    expect(metrics).toContain('metasync_mirror_hot_cache_misses_total 3');
  });

  it.each([
    '/p2/../../etc/passwd',
    '/p2/%2e%2e/%2e%2e/etc/passwd',
    '/p2/acme%2ffoo.json',
    '/p2\\..\\x.json',
    '/p2/foo%00.json',
    `/p2/${'a'.repeat(600)}.json`,
    'http://evil.example/p2/acme/foo.json',
  ])('refuses raw request target %j with 400 and fetches nothing', async (target) => {
    const { primary, mirror } = await syncedMirror();
    const address = await mirror.app.listen({ host: '127.0.0.1', port: 0 });
    const before = primary.requests.length;
    const answer = await rawRequest(new URL(address), `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(primary.requests.slice(before).filter((r) => !r.startsWith('/sync/'))).toEqual([]);
  });

  it('proxies a path it lacks to the primary, verified, marked, with its own headers and 304s', async () => {
    const { primary, mirror } = await syncedMirror();
    primary.faults.silentEvents = true;
    await mirror.syncer.stop();
    primary.publish({ 'p2/acme/new.json': '{"new":true}' });
    const response = await mirror.app.inject({ url: '/p2/acme/new.json', headers: { 'accept-encoding': 'gzip, br' } });
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe('{"new":true}');
    expect(response.headers).toMatchObject({
      [HEADERS.proxied]: '1',
      [HEADERS.seq]: '1',
      etag: `"${sha256Hex('{"new":true}')}"`,
      'content-type': 'application/json',
      'cache-control': 'public, max-age=60, stale-while-revalidate=30',
      'content-length': '12',
    });
    expect(response.headers['content-encoding']).toBeUndefined();
    const lastModified = String(response.headers['last-modified']);
    expect(Date.parse(lastModified)).toBeGreaterThan(0);
    const notModified = await mirror.app.inject({ url: '/p2/acme/new.json', headers: { 'if-modified-since': lastModified } });
    expect(notModified.statusCode).toBe(304);
    expect(notModified.body).toBe('');
    const head = await mirror.app.inject({ method: 'HEAD', url: '/p2/acme/new.json' });
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers['content-length']).toBe('12');
    // Conditionals are answered by the mirror, from signed fields: the primary is asked for the whole answer.
    expect(primary.requests.filter((target) => target === '/p2/acme/new.json')).toHaveLength(3);
  });

  it('refuses a proxied answer signed by a key it does not trust, or over the body limit, with 404 no-store and a metric', async () => {
    const { primary, mirror } = await syncedMirror(['--proxy-max-body-bytes', '100']);
    primary.faults.silentEvents = true;
    await mirror.syncer.stop();
    primary.publish({ 'p2/acme/big.json': JSON.stringify({ pad: 'x'.repeat(200) }), 'p2/acme/small.json': '{"small":true}' });
    const tooLarge = await mirror.app.inject({ url: '/p2/acme/big.json' });
    expect(tooLarge.statusCode).toBe(404);
    expect(tooLarge.headers['cache-control']).toBe('no-store');
    expect(tooLarge.body).not.toContain('xxx');
    primary.faults.signWith = signingKeyFromPem(generateSigningKeyPem());
    const forged = await mirror.app.inject({ url: '/p2/acme/small.json' });
    expect(forged.statusCode).toBe(404);
    expect(forged.headers['cache-control']).toBe('no-store');
    expect(forged.body).not.toContain('small');
    const metrics = (await mirror.app.inject({ url: '/metrics' })).body;
    expect(metrics).toContain('metasync_mirror_proxy_refused_total{reason="too-large"} 1');
    expect(metrics).toContain('metasync_mirror_proxy_refused_total{reason="unknown-key"} 1');
  });

  it('passes a primary 404 as 404 no-store', async () => {
    const { mirror } = await syncedMirror();
    const response = await mirror.app.inject({ url: '/p2/acme/missing.json' });
    expect(response.statusCode).toBe(404);
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it('answers 404 no-store, never 5xx, when the primary is unreachable or failing', async () => {
    const failing: Server = createServer((_req, res) => {
      res.writeHead(503).end('down');
    });
    await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => failing.close(() => resolve())));
    for (const url of [`http://127.0.0.1:${(failing.address() as AddressInfo).port}`, 'http://127.0.0.1:9']) {
      const mirror = await mirrorOf(url);
      const response = await mirror.app.inject({ url: '/p2/acme/unknown.json' });
      expect(response.statusCode).toBe(404);
      expect(response.headers['cache-control']).toBe('no-store');
    }
  });

  it('retries a proxied request once when its connection is reset before an answer', async () => {
    let requests = 0;
    const key = signingKeyFromPem(generateSigningKeyPem());
    const fields = { path: 'p2/acme/flaky.json', sha256: sha256Hex('{"flaky":true}'), seq: 0, mtime: 1_000 };
    const flaky: Server = createServer((req, res) => {
      requests++;
      if (requests === 1) {
        req.socket.destroy();
        return;
      }
      res
        .writeHead(200, {
          [HEADERS.path]: fields.path,
          [HEADERS.sha256]: fields.sha256,
          [HEADERS.seq]: '0',
          [HEADERS.mtime]: '1000',
          [HEADERS.signature]: signProxyAnswer(key, fields),
        })
        .end('{"flaky":true}');
    });
    await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => flaky.close(() => resolve())));
    const mirror = await mirrorOf(`http://127.0.0.1:${(flaky.address() as AddressInfo).port}`, [
      '--primary-key',
      `${key.keyId}:${key.publicKey}`,
    ]);
    const response = await mirror.app.inject({ url: '/p2/acme/flaky.json' });
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe('{"flaky":true}');
    expect(requests).toBe(2);
  });

  it('refuses a proxied body that does not hash to its ETag', async () => {
    const lying: Server = createServer((_req, res) => {
      res.writeHead(200, { etag: `"${sha256Hex('honest')}"`, 'content-type': 'application/json' }).end('tampered');
    });
    await new Promise<void>((resolve) => lying.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => lying.close(() => resolve())));
    const mirror = await mirrorOf(`http://127.0.0.1:${(lying.address() as AddressInfo).port}`);
    const response = await mirror.app.inject({ url: '/p2/acme/x.json' });
    expect(response.statusCode).toBe(404);
    expect(response.body).not.toContain('tampered');
  });

  it('reports freshness in /health/fresh and metrics in /metrics', async () => {
    const { mirror } = await syncedMirror();
    const fresh = await mirror.app.inject({ url: '/health/fresh' });
    expect(fresh.statusCode).toBe(200);
    expect(fresh.body).toMatch(/^fresh seq 1/);
    const metrics = await mirror.app.inject({ url: '/metrics' });
    expect(metrics.body).toContain('metasync_mirror_applied_seq 1');
    expect((await mirror.app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });

  it('reports stale before it ever heard from the primary', async () => {
    const mirror = await mirrorOf('http://127.0.0.1:9');
    const response = await mirror.app.inject({ url: '/health/fresh' });
    expect(response.statusCode).toBe(503);
    expect(response.body).toContain('never heard');
  });

  it('answers hot hits over a real socket with the same headers and bytes as the first (cold) answer', async () => {
    const { primary, mirror } = await syncedMirror();
    const base = await mirror.app.listen({ host: '127.0.0.1', port: 0 });
    const get = (path: string, method = 'GET') => fetch(`${base}${path}`, { method, headers: { 'accept-encoding': 'gzip' } });
    const cold = await get('/p2/acme/foo.json');
    const coldBody = await cold.text();
    const hot = await get('/p2/acme/foo.json');
    expect(await hot.text()).toBe(coldBody);
    for (const name of ['etag', 'last-modified', 'cache-control', 'vary', 'content-type', 'content-encoding', HEADERS.seq]) {
      expect(hot.headers.get(name)).toBe(cold.headers.get(name));
    }
    const head = await get('/p2/acme/foo.json', 'HEAD');
    expect(head.headers.get('etag')).toBe(cold.headers.get('etag'));
    const metrics = (await mirror.app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/^metasync_mirror_hot_cache_hits_total [1-9]/m);
    // A new generation changes the entry: the hot path must follow it at once.
    primary.publish({ 'p2/acme/foo.json': '{"v":"next"}' });
    for (let i = 0; i < 500 && mirror.log.state.seq < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    const next = await get('/p2/acme/foo.json');
    expect(await next.text()).toBe('{"v":"next"}');
    expect(next.headers.get(HEADERS.seq)).toBe('2');
  });

  it('refuses methods other than GET and HEAD', async () => {
    const { mirror } = await syncedMirror();
    expect((await mirror.app.inject({ method: 'POST', url: '/p2/acme/foo.json' })).statusCode).toBe(405);
  });
});

async function rawRequest(url: URL, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    socket.setTimeout(3_000, () => socket.destroy(new Error('raw request timed out')));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.write(text);
  });
}
