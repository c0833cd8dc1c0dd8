import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRepoPath, isReservedPath } from '@metasync/shared';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import {
  getText,
  publishPackage,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * Requests built to escape the data dir or the repository namespace, sent as
 * raw bytes (no client normalizes them first). The fault proxy between mirror
 * and primary records every request line the mirror sent upstream.
 */
let primary: RunningPrimary;
let proxy: FaultProxy;
let mirror: RunningMirror;
const SECRET = 'metasync-traversal-canary-7f3a';

beforeAll(async () => {
  primary = await startPrimary();
  await publishPackage(primary.url, 'acme/foo', [{ version: '1.0.0' }]);
  proxy = await startFaultProxy({ upstream: primary.url });
  mirror = await startMirror({ primaryUrl: proxy.url, keyArg: primary.keyArg });
  await waitFor(async () => (await getText(`${mirror.url}/p2/acme/foo.json`)).status === 200, { what: 'mirror serving acme/foo' });
  // Canaries beside and above the data dir: no answer may ever contain them.
  await writeFile(join(mirror.dataDir, 'canary.json'), SECRET);
  await writeFile(join(dirname(mirror.dataDir), 'canary.json'), SECRET);
});

afterAll(async () => {
  await mirror?.stop();
  await proxy?.close();
  await primary?.stop();
  await removeTempDirs();
});

function rawRequest(url: string, head: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.setTimeout(5_000, () => socket.destroy(new Error(`no answer to ${JSON.stringify(head.slice(0, 80))}`)));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.write(head, 'latin1');
  });
}

const primaryHostPort = (): string => new URL(primary.url).host;

const TARGETS: [string, () => string][] = [
  ['dot segments', () => '/../../etc/passwd'],
  ['dot segments under p2', () => '/p2/../../../canary.json'],
  ['encoded dots', () => '/p2/%2e%2e/%2e%2e/canary.json'],
  ['encoded dots, upper case', () => '/%2E%2E/%2E%2E/etc/passwd'],
  ['encoded slash', () => '/p2/..%2f..%2fcanary.json'],
  ['encoded slash everywhere', () => '/p2%2f..%2f..%2fetc%2fpasswd'],
  ['encoded backslash', () => '/p2/acme%5c..%5c..%5ccanary.json'],
  ['raw backslashes', () => '/p2\\..\\..\\canary.json'],
  ['encoded NUL', () => '/p2/acme/foo.json%00.txt'],
  ['double encoding', () => '/%252e%252e/%252e%252e/etc/passwd'],
  ['dotfile', () => '/.git/config'],
  ['overlong path', () => `/p2/${'a'.repeat(4000)}.json`],
  ['too many segments', () => `/${'a/'.repeat(40)}x.json`],
  ['absolute URL to the primary sync API', () => `http://${primaryHostPort()}/sync/v1/state`],
  ['absolute URL elsewhere', () => 'http://evil.example/p2/acme/foo.json'],
  ['scheme-relative', () => '//evil.example/p2/acme/foo.json'],
  ['primary sync API by path', () => '/sync/v1/state'],
  ['primary publish API by path', () => '/api/v1/packages/acme/foo'],
  ['primary mirrors list by path', () => '/sync/v1/mirrors'],
];

describe('mirror request-target hardening (raw sockets)', () => {
  it.each(TARGETS)('%s: refused (4xx, never 5xx) without leaking files', async (_name, target) => {
    const answer = await rawRequest(mirror.url, `GET ${target()} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(answer)?.[1]);
    expect(status).toBeGreaterThanOrEqual(400);
    expect(status).toBeLessThan(500);
    expect(answer).not.toContain(SECRET);
    expect(answer).not.toContain('root:');
    expect(answer).not.toContain('"keys"');
  });

  it('answers a raw NUL in the request line with a 4xx', async () => {
    const answer = await rawRequest(mirror.url, 'GET /p2/acme/foo\u0000.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 4\d\d /);
  });

  it('still serves the real path after the attempts', async () => {
    expect((await getText(`${mirror.url}/p2/acme/foo.json`)).status).toBe(200);
  });

  it('sent the primary nothing but sync calls and valid, non-reserved repository paths', () => {
    const lines = proxy.requestLines();
    expect(lines.length).toBeGreaterThan(0);
    const outside = lines.filter((line) => {
      const target = line.split(' ')[1] ?? '';
      if (
        /^\/sync\/v1\/(state(\?nonce=[A-Za-z0-9_-]+)?|events|changes\?since=\d+|snapshot|ack|objects\/[0-9a-f]{64}|objects\/pack|keys\?signer=[0-9a-f]{16})$/.test(
          target,
        )
      )
        return false;
      const path = target.slice(1).split('?')[0] ?? '';
      return !(target.startsWith('/') && isRepoPath(path) && !isReservedPath(path));
    });
    expect(outside).toEqual([]);
    expect(proxy.received()).not.toContain('evil.example');
  });
});
