import { copyFile, readFile } from 'node:fs/promises';
import { connect as h2connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  publishPackage,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { makeTlsFixtures, type TlsFixtures } from './helpers/tls-certs.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * A --workers 2 mirror on HTTPS: every serving thread loads the certificate
 * and watches it, so HTTP/2 and HTTP/1.1 are served by both threads and a
 * renewed certificate reaches both without a restart.
 */
let fixtures: TlsFixtures;
let ca: Buffer;
let primary: RunningPrimary | undefined;
let mirror: RunningMirror | undefined;
let liveCert: string;
let liveKey: string;

function h1(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject).on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.end();
  });
}

function h2(origin: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = h2connect(origin, { ca });
    session.on('error', reject);
    const stream = session.request({ ':path': path });
    let status = 0;
    let body = '';
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    stream.on('end', () => {
      session.close();
      resolve({ status, body });
    });
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

async function fastAnswers(url: string): Promise<number[]> {
  const text = (await h1(`${url}/metrics`)).body;
  return [0, 1].map((w) =>
    Number(new RegExp(`^metasync_mirror_worker_requests_total\\{worker="${w}",route="fast"\\} (\\d+)`, 'm').exec(text)?.[1] ?? -1),
  );
}

beforeAll(async () => {
  fixtures = await makeTlsFixtures();
  ca = await readFile(fixtures.caFile);
  liveCert = join(fixtures.dir, 'mirror-live.pem');
  liveKey = join(fixtures.dir, 'mirror-live.key');
  await copyFile(fixtures.certFile, liveCert);
  await copyFile(fixtures.keyFile, liveKey);
  primary = await startPrimary();
  await publishPackage(primary.url, 'acme/secure', [{ version: '4.2.0' }]);
  mirror = await startMirror({
    primaryUrl: primary.url,
    keyArg: primary.keyArg,
    args: ['--workers', '2', '--poll-interval-ms', '200', '--tls-cert', liveCert, '--tls-key', liveKey, '--tls-reload-interval-ms', '100'],
  });
  const m = mirror;
  await waitFor(async () => (await h1(`${m.url}/p2/acme/secure.json`)).status === 200, {
    what: 'the HTTPS mirror synced',
    timeoutMs: 15_000,
  });
}, 60_000);

afterAll(async () => {
  await mirror?.stop();
  await primary?.stop();
  await removeTempDirs();
  await fixtures?.remove();
});

describe('mirror with --workers 2 on HTTPS', () => {
  it('serves HTTP/2 and HTTP/1.1 from both threads', async () => {
    expect(mirror!.url.startsWith('https://')).toBe(true);
    const before = await fastAnswers(mirror!.url);
    for (let i = 0; i < 24; i++) {
      const answer = i % 2 === 0 ? await h2(mirror!.url, '/p2/acme/secure.json') : await h1(`${mirror!.url}/p2/acme/secure.json`);
      expect(answer.status).toBe(200);
      expect(answer.body).toContain('4.2.0');
    }
    const after = await fastAnswers(mirror!.url);
    expect(after[0]! - before[0]!).toBeGreaterThan(0);
    expect(after[1]! - before[1]!).toBeGreaterThan(0);
  });

  it('gives a renewed certificate to every thread without a restart', async () => {
    expect(await peerSerial(mirror!.url)).toBe('1001');
    const renewed = fixtures.issue('renewed', '5005');
    await copyFile(renewed.keyFile, liveKey);
    await copyFile(renewed.certFile, liveCert);
    await waitFor(
      () =>
        [0, 1].every((w) =>
          mirror!.logs.some((line) => line.msg === 'tls certificate reloaded' && line.serial === '5005' && line.worker === w),
        ),
      { what: 'both threads reloading', timeoutMs: 10_000 },
    );
    // Fresh connections land on either thread: none may still present the old certificate.
    for (let i = 0; i < 16; i++) expect(await peerSerial(mirror!.url)).toBe('5005');
  });
});
