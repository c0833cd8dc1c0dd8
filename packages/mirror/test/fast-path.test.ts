import { rm } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HEADERS, etagFor, sha256Hex } from '@metasync/shared';
import { type Mirror } from '../src/mirror.js';
import { syncedTestMirror } from './synced-mirror.js';

/**
 * The fast path (serve/fast-path.ts) answers plain GET/HEAD requests before
 * fastify, but only over a real socket: `app.inject()` goes straight to
 * fastify's route. So the route's answer (inject) is the reference the fast
 * path's answer (socket) must equal, header for header and byte for byte.
 */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const p2Body = JSON.stringify({ packages: { 'acme/foo': [{ version: '1.0.0', description: 'x'.repeat(3000) }] } });
const COMPARED = [
  'etag',
  'last-modified',
  'cache-control',
  'vary',
  'content-type',
  'content-encoding',
  'content-length',
  HEADERS.seq,
] as const;

async function servingMirror(
  files: Record<string, string>,
  extra: string[] = [],
): Promise<{ mirror: Mirror; base: string; dataDir: string }> {
  const { mirror, dataDir } = await syncedTestMirror(files, extra, cleanups);
  const base = await mirror.app.listen({ host: '127.0.0.1', port: 0 });
  return { mirror, base, dataDir };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/**
 * A raw HTTP/1.1 request: no automatic decompression, so the bytes on the wire are compared.
 * With or without a keep-alive agent, Node parses it and the fast path answers.
 */
function overSocket(
  base: string,
  path: string,
  method: string,
  headers: Record<string, string>,
  agent: Agent | false = false,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(3_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

async function viaRoute(mirror: Mirror, path: string, method: string, headers: Record<string, string>): Promise<Answer> {
  const response = await mirror.app.inject({ url: path, method: method as 'GET' | 'HEAD', headers });
  return { status: response.statusCode, headers: response.headers as Answer['headers'], body: response.rawPayload };
}

function comparable(answer: Answer): { status: number; headers: Record<string, unknown>; body: string } {
  const headers: Record<string, unknown> = {};
  for (const name of COMPARED) {
    // A 304 carries no representation headers in either answer; fastify may still name a length of 0.
    if (answer.status === 304 && name === 'content-length') continue;
    headers[name] = answer.headers[name];
  }
  return { status: answer.status, headers, body: answer.body.toString('base64') };
}

async function metric(mirror: Mirror, name: string): Promise<number> {
  const text = (await mirror.app.inject({ url: '/metrics' })).body;
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('mirror fast path', () => {
  it.each([
    ['the socket front (keep-alive)', true],
    ["node's http server (Connection: close)", false],
  ])('answers GET, HEAD and conditional requests through %s exactly as the fastify route does', async (_via, keepAlive) => {
    const { mirror, base } = await servingMirror({ 'packages.json': '{"packages":[]}', 'p2/acme/foo.json': p2Body });
    const agent = keepAlive ? new Agent({ keepAlive: true, maxSockets: 1 }) : false;
    cleanups.push(async () => {
      if (agent !== false) agent.destroy();
    });
    const entry = mirror.log.state.lookup('p2/acme/foo.json')!;
    const etag = `"${entry.sha256}"`;
    const conditions: Record<string, string>[] = [
      {},
      { 'if-none-match': etag },
      { 'if-none-match': '"other"' },
      { 'if-none-match': `W/${etag}, "x"` },
      { 'if-modified-since': new Date(entry.mtime).toUTCString() },
      { 'if-modified-since': new Date(0).toUTCString() },
      { 'if-modified-since': 'garbage' },
      { 'if-none-match': '"other"', 'if-modified-since': new Date(entry.mtime).toUTCString() },
    ];
    const encodings = [undefined, 'gzip', 'gzip, br', 'br;q=0, gzip', 'identity', '*', 'gzip;q=0, br;q=0'];
    let socketRequests = 0;
    const pairs: { label: string; socket: Answer; route?: Answer; method: string; headers: Record<string, string> }[] = [];
    for (const path of ['/p2/acme/foo.json', '/packages.json']) {
      for (const method of ['GET', 'HEAD']) {
        for (const condition of conditions) {
          for (const encoding of encodings) {
            const headers = { ...condition, ...(encoding === undefined ? {} : { 'accept-encoding': encoding }) };
            pairs.push({
              label: `${method} ${path} ${JSON.stringify(headers)}`,
              socket: await overSocket(base, path, method, headers, agent),
              method,
              headers,
            });
            socketRequests++;
          }
        }
      }
    }
    // Every one of those was answered before fastify: the fast path's counts reach the metrics.
    const served = await mirror.app.inject({ url: '/metrics' });
    const storeAnswers = [...served.body.matchAll(/^metasync_mirror_responses_total\{source="store",status="(200|304)"\} (\d+)$/gm)].reduce(
      (sum, m) => sum + Number(m[2]),
      0,
    );
    expect(storeAnswers).toBe(socketRequests);
    for (const pair of pairs) {
      const path = pair.label.split(' ')[1]!;
      const route = await viaRoute(mirror, path, pair.method, pair.headers);
      expect(comparable(pair.socket), pair.label).toEqual(comparable(route));
    }
  });

  it('answers each of 30 republishes of one path with the bytes and headers of that version', async () => {
    const { primary, mirror } = await syncedTestMirror({ 'p2/acme/foo.json': p2Body }, [], cleanups);
    const url = await mirror.app.listen({ host: '127.0.0.1', port: 0 });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(async () => agent.destroy());
    for (let version = 0; version < 30; version++) {
      const body = JSON.stringify({ packages: { 'acme/foo': [{ version: `1.0.${version}` }] } });
      const seq = primary.publish({ 'p2/acme/foo.json': body });
      for (let i = 0; i < 500 && mirror.log.state.seq < seq; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(mirror.log.state.seq).toBe(seq);
      const answer = await overSocket(url, '/p2/acme/foo.json', 'GET', {}, agent);
      expect(answer.body.toString('utf8')).toBe(body);
      // Headers built for an earlier version must never go out with this one.
      expect(answer.headers.etag).toBe(etagFor(sha256Hex(body)));
    }
  });

  it('serves a cold object from disk with a budget too small to cache it, and keeps answering it right', async () => {
    const { mirror, base } = await servingMirror({ 'p2/acme/foo.json': p2Body }, ['--hot-cache-bytes', '1000']);
    for (let i = 0; i < 3; i++) {
      const answer = await overSocket(base, '/p2/acme/foo.json', 'GET', {});
      expect(answer.status).toBe(200);
      expect(answer.body.toString('utf8')).toBe(p2Body);
    }
    expect(await metric(mirror, 'metasync_mirror_hot_cache_misses_total')).toBe(3);
    expect(await metric(mirror, 'metasync_mirror_hot_cache_hits_total')).toBe(0);
  });

  it('leaves an object whose file vanished to the route: 404 no-store, never a partial body', async () => {
    const { mirror, base, dataDir } = await servingMirror({ 'p2/acme/foo.json': p2Body });
    const entry = mirror.log.state.lookup('p2/acme/foo.json')!;
    const file = join(dataDir, 'objects', entry.sha256.slice(0, 2), entry.sha256.slice(2));
    for (const suffix of ['', '.gz', '.br']) await rm(`${file}${suffix}`, { force: true });
    const answer = await overSocket(base, '/p2/acme/foo.json', 'GET', { 'accept-encoding': 'gzip' });
    expect(answer.status).toBe(404);
    expect(answer.headers['cache-control']).toBe('no-store');
  });

  it('leaves objects above the synchronous read cap to the route, which streams them whole', async () => {
    const big = JSON.stringify({
      packages: { 'acme/big': [{ version: '1.0.0', blob: Array.from({ length: 40_000 }, (_, i) => `${i * 7919}`).join(',') }] },
    });
    // Identity only ("identity" accepted): the raw object is over the 1 MiB cap only uncompressed.
    const huge = big.repeat(Math.ceil((1.1 * 1024 * 1024) / big.length));
    const { base } = await servingMirror({ 'p2/acme/big.json': huge });
    const answer = await overSocket(base, '/p2/acme/big.json', 'GET', {});
    expect(answer.status).toBe(200);
    expect(answer.body.length).toBe(Buffer.byteLength(huge));
    expect(answer.body.toString('utf8') === huge).toBe(true);
  });
});
