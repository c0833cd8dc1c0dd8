import { copyFile, readFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { resolveWithComposer } from './helpers/composer-client.js';
import { startDaemon, type Daemon } from './helpers/daemon.js';
import { makeTempDir, removeTempDirs } from './helpers/mirror-cluster.js';
import { makeTlsFixtures, type TlsFixtures } from './helpers/tls-certs.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * TLS on both hops, with the built daemons: a primary and a mirror on HTTPS
 * (certificates from a test CA made with openssl), the mirror trusting the
 * primary through --primary-ca. HTTP/2 by ALPN with HTTP/1.1 as the fallback,
 * the same answers on both, a real Composer with secure-http on, a mirror with
 * the wrong CA that fails loudly and never syncs, and a certificate renewal
 * picked up without a restart.
 */
const TOKEN = 'tls-e2e-token';
let fixtures: TlsFixtures;
let ca: Buffer;
let primary: Daemon;
let mirror: Daemon;
let primaryPin = '';
const daemons: Daemon[] = [];
let liveCert: string;
let liveKey: string;

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  httpVersion: string;
}

/** HTTP/1.1 over TLS (ALPN offers only http/1.1), trusting the test CA only. */
function h1(url: string, init: { method?: string; headers?: Record<string, string>; body?: string; ca?: Buffer } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      { method: init.method ?? 'GET', headers: init.headers, ca: init.ca ?? ca, agent: false, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, String(v)])),
            body: Buffer.concat(chunks),
            httpVersion: res.httpVersion,
          }),
        );
      },
    );
    req.on('error', reject).on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.end(init.body);
  });
}

const sessions: ClientHttp2Session[] = [];
function h2session(origin: string): ClientHttp2Session {
  const session = h2connect(origin, { ca });
  session.on('error', () => undefined);
  sessions.push(session);
  return session;
}

function h2(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ':method': method, ...headers });
    const chunks: Buffer[] = [];
    let status = 0;
    let out: Record<string, string> = {};
    stream.setTimeout(10_000, () => stream.close());
    stream.on('response', (h) => {
      status = Number(h[':status']);
      out = Object.fromEntries(
        Object.entries(h)
          .filter(([k]) => !k.startsWith(':'))
          .map(([k, v]) => [k, String(v)]),
      );
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve({ status, headers: out, body: Buffer.concat(chunks), httpVersion: '2.0' }));
    stream.on('error', reject);
  });
}

function peerSerial(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: Number(new URL(url).port), ca, ALPNProtocols: ['h2'] }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

async function publish(name: string, versions: { version: string; require?: Record<string, string> }[]): Promise<void> {
  const body = JSON.stringify({
    versions: versions.map((v) => ({ ...v, dist: { type: 'zip', url: `https://example.invalid/${name}/${v.version}.zip` } })),
  });
  const answer = await h1(`${primary.url}/api/v1/packages/${name}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body,
  });
  if (answer.status >= 300) throw new Error(`publish ${name}: ${answer.status} ${answer.body.toString()}`);
}

beforeAll(async () => {
  fixtures = await makeTlsFixtures();
  ca = await readFile(fixtures.caFile);
  // The mirror's files are copies, so the renewal test can replace them.
  liveCert = join(fixtures.dir, 'mirror-live.pem');
  liveKey = join(fixtures.dir, 'mirror-live.key');
  await copyFile(fixtures.certFile, liveCert);
  await copyFile(fixtures.keyFile, liveKey);
  const tlsArgs = ['--tls-cert', fixtures.certFile, '--tls-key', fixtures.keyFile];
  primary = await startDaemon({
    bin: 'primary',
    args: [
      '--data',
      await makeTempDir('tls-primary-'),
      '--listen',
      '127.0.0.1:0',
      '--publish-token',
      TOKEN,
      '--heartbeat-ms',
      '1000',
      ...tlsArgs,
    ],
  });
  daemons.push(primary);
  await publish('acme/util', [{ version: '1.0.0' }, { version: '1.1.0' }]);
  await publish('acme/lib', [{ version: '1.0.0', require: { 'acme/util': '^1.0' } }]);
  const state = JSON.parse((await h1(`${primary.url}/sync/v1/state`)).body.toString()) as { keys: { keyId: string; publicKey: string }[] };
  const key = state.keys[0]!;
  primaryPin = `${key.keyId}:${key.publicKey}`;
  mirror = await startDaemon({
    bin: 'mirror',
    args: [
      '--primary', primary.url, '--primary-ca', fixtures.caFile, '--primary-key', `${key.keyId}:${key.publicKey}`,
      '--data', await makeTempDir('tls-mirror-'), '--listen', '127.0.0.1:0', '--mirror-id', 'tls-1',
      '--tls-cert', liveCert, '--tls-key', liveKey, '--tls-reload-interval-ms', '100', '--http2-max-concurrent-streams', '8',
    ], // prettier-ignore
  });
  daemons.push(mirror);
  await waitFor(async () => (await h1(`${mirror.url}/p2/acme/lib.json`)).status === 200, {
    what: 'the HTTPS mirror synced',
    timeoutMs: 15_000,
  });
}, 60_000);

afterAll(async () => {
  for (const session of sessions) session.destroy();
  await Promise.all(daemons.map((d) => d.stop()));
  await removeTempDirs();
  await fixtures?.remove();
});

describe('TLS on both hops', () => {
  it('both daemons offer HTTP/2 by ALPN with the configured stream limit, and fall back to HTTP/1.1', async () => {
    expect(primary.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(mirror.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    for (const url of [`${primary.url}/sync/v1/state`, `${mirror.url}/healthz`]) {
      const { origin, pathname } = new URL(url);
      const session = h2session(origin);
      expect((await h2(session, pathname)).status).toBe(200);
      expect(session.alpnProtocol).toBe('h2');
      const fallback = await h1(url);
      expect([fallback.status, fallback.httpVersion]).toEqual([200, '1.1']);
    }
    const session = h2session(mirror.url);
    await h2(session, '/healthz');
    expect(session.remoteSettings).toMatchObject({ maxConcurrentStreams: 8, maxHeaderListSize: 16_384 });
  });

  it('serves the same status, headers and bytes over HTTP/2 as over HTTP/1.1 (hot path, 304, HEAD, 404)', async () => {
    const session = h2session(mirror.url);
    const first = await h1(`${mirror.url}/p2/acme/lib.json`, { headers: { 'accept-encoding': 'gzip' } });
    const etag = first.headers.etag!;
    const cases: { path: string; headers?: Record<string, string>; method?: string }[] = [
      { path: '/p2/acme/lib.json', headers: { 'accept-encoding': 'gzip, br' } },
      { path: '/p2/acme/lib.json', headers: { 'accept-encoding': 'gzip' } },
      { path: '/p2/acme/util.json' },
      { path: '/packages.json', headers: { 'accept-encoding': 'gzip' } },
      { path: '/p2/acme/lib.json', headers: { 'if-none-match': etag, 'accept-encoding': 'gzip' } },
      { path: '/p2/acme/lib.json', headers: { 'accept-encoding': 'gzip' }, method: 'HEAD' },
      { path: '/p2/acme/nothing-here.json' },
    ];
    const compared = [
      'etag',
      'last-modified',
      'content-type',
      'content-encoding',
      'content-length',
      'cache-control',
      'vary',
      'x-metasync-seq',
    ];
    const pick = (a: Answer) => ({
      status: a.status,
      body: a.body.toString('base64'),
      ...Object.fromEntries(compared.map((h) => [h, a.headers[h]])),
    });
    const statuses: number[] = [];
    for (const c of cases) {
      const viaH1 = await h1(`${mirror.url}${c.path}`, { headers: c.headers ?? {}, method: c.method ?? 'GET' });
      const viaH2 = await h2(session, c.path, c.headers, c.method);
      expect(pick(viaH2), `${c.method ?? 'GET'} ${c.path} ${JSON.stringify(c.headers)}`).toEqual(pick(viaH1));
      statuses.push(viaH2.status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 304, 200, 404]);
  });

  it('a real Composer with secure-http on and cafile set resolves through the HTTPS mirror; with another CA it fails on the certificate', async () => {
    const result = await resolveWithComposer({ repoUrl: mirror.url, cafile: fixtures.caFile, require: { 'acme/lib': '^1.0' } });
    expect(result.versions).toEqual({ 'acme/lib': '1.0.0', 'acme/util': '1.1.0' });
    const refused = await resolveWithComposer({ repoUrl: mirror.url, cafile: fixtures.otherCaFile, require: { 'acme/lib': '^1.0' } }).then(
      () => 'resolved',
      (err: unknown) => (err as Error).message,
    );
    expect(refused).toMatch(/composer update failed/);
    expect(refused).toMatch(/curl error 60[\s\S]*SSL\s+certificate problem/);
  }, 120_000);

  it('a mirror given the wrong CA says so in its log and health, and never syncs or proxies over anything else', async () => {
    const wrong = await startDaemon({
      bin: 'mirror',
      args: [
        '--primary', primary.url, '--primary-ca', fixtures.otherCaFile, '--primary-key', primaryPin, '--data', await makeTempDir('tls-wrong-ca-'),
        '--listen', '127.0.0.1:0', '--mirror-id', 'tls-wrong-ca', '--poll-interval-ms', '200',
      ], // prettier-ignore
    });
    daemons.push(wrong);
    const health = await waitFor(
      async () => {
        const response = await fetch(`${wrong.url}/health/fresh`);
        const text = await response.text();
        return text.includes('METASYNC_ERR_TLS_HANDSHAKE') ? { status: response.status, text } : undefined;
      },
      { what: 'the wrong-CA mirror names the TLS failure in /health/fresh' },
    );
    expect(health.status).toBe(503);
    // The log line travels through a pipe: it may arrive after /health/fresh already says so.
    const failure = (await waitFor(() => wrong.logs.find((line) => line.msg === 'sync failed'), {
      what: "the wrong-CA mirror's sync failed log line",
    })) as { err: { code: string; message: string } } | undefined;
    expect(failure?.err.code).toBe('METASYNC_ERR_TLS_HANDSHAKE');
    expect(failure?.err.message).toMatch(/--primary-ca/);
    // A package the primary has: the proxy fallback cannot fetch it either, so 404 no-store, never a 5xx.
    const miss = await fetch(`${wrong.url}/p2/acme/lib.json`);
    expect(miss.status).toBe(404);
    expect(miss.headers.get('cache-control')).toBe('no-store');
    expect(miss.headers.get('x-metasync-seq')).toBe('0');
    const mirrors = JSON.parse((await h1(`${primary.url}/sync/v1/mirrors`)).body.toString()) as { mirrors: { mirrorId: string }[] };
    expect(mirrors.mirrors.map((m) => m.mirrorId)).not.toContain('tls-wrong-ca');
    await wrong.stop();
  });

  it('picks up a renewed certificate for new connections without a restart, and keeps it when the next files are broken', async () => {
    expect(await peerSerial(mirror.url)).toBe('1001');
    const renewed = fixtures.issue('renewed', '5005');
    await copyFile(renewed.keyFile, liveKey);
    await copyFile(renewed.certFile, liveCert);
    await waitFor(async () => (await peerSerial(mirror.url)) === '5005', { what: 'the renewed certificate served', timeoutMs: 5_000 });
    // The log line travels through a pipe: it can arrive just after the new certificate is served.
    await waitFor(() => mirror.logs.some((line) => line.msg === 'tls certificate reloaded' && line.serial === '5005'), {
      what: 'the reload logged',
      timeoutMs: 5_000,
    });
    expect((await h1(`${mirror.url}/p2/acme/lib.json`)).status).toBe(200);

    await copyFile(fixtures.issue('broken', '6006').certFile, liveCert);
    const failed = await waitFor(() => mirror.logs.find((line) => line.msg === 'tls certificate reload failed, keeping the current one'), {
      what: 'the reload failure logged',
    });
    expect((failed as { err: { code: string } }).err.code).toBe('METASYNC_ERR_TLS_RELOAD_FAILED');
    expect(await peerSerial(mirror.url)).toBe('5005');
    expect((await h2(h2session(mirror.url), '/p2/acme/lib.json')).status).toBe(200);
  });

  it('the operator CLI reaches an https primary with --ca, and names the fix without it', async () => {
    const withCa = await runCli(['--primary', primary.url, '--ca', fixtures.caFile, 'keys', 'list', '--json']);
    expect(withCa.code).toBe(0);
    expect(withCa.stdout).toContain('keyId');
    const without = await runCli(['--primary', primary.url, 'keys', 'list'], { env: { METASYNC_CA_FILE: '' } });
    expect(without.code).toBe(5);
    expect(without.stderr).toContain('METASYNC_ERR_TLS_HANDSHAKE');
    expect(without.stderr).toContain('--ca');
  });

  it('refuses to start with only one of --tls-cert and --tls-key', async () => {
    const started = startDaemon({
      bin: 'mirror',
      args: [
        '--primary',
        primary.url,
        '--data',
        await makeTempDir('tls-half-'),
        '--listen',
        '127.0.0.1:0',
        '--primary-key',
        primaryPin,
        '--tls-cert',
        fixtures.certFile,
      ],
      readyTimeoutMs: 10_000,
    });
    await expect(started).rejects.toThrow(/exited \(code 2[\s\S]*--tls-cert needs --tls-key/);
  });
});
