import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRepoPath, isReservedPath } from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { loadConfig } from '../src/config.js';
import { openMirror, type Mirror } from '../src/mirror.js';

/**
 * The mirror's serving path over generated request targets sent as raw bytes
 * (no client normalises them first): whatever the target, the answer is never
 * a 5xx and never holds a canary planted beside and above the data dir, and
 * every request the proxy fallback sends upstream is a valid, non-reserved
 * repository path under the primary's base path (plus, at most, a plain query).
 */
const CANARY = 'metasync-serving-canary-4b1d';
/** What the canary files hold: never part of a request, so it can only come back from a file read. */
const CANARY_CONTENT = 'canary-bytes-never-served-9c2e';
let upstream: Server;
const upstreamTargets: string[] = [];
let mirror: Mirror;
let mirrorPort: number;
let dataDir: string;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    upstreamTargets.push(req.url ?? '');
    res.writeHead(404, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/base`;
  dataDir = await mkdtemp(join(tmpdir(), 'mirror-serving-paths-'));
  await writeFile(join(dataDir, 'canary.json'), CANARY_CONTENT);
  await writeFile(join(dirname(dataDir), `${CANARY}.json`), CANARY_CONTENT);
  const loaded = loadConfig(
    ['--primary', upstreamUrl, '--data', dataDir, '--listen', '127.0.0.1:0', '--proxy-timeout-ms', '1000', '--trust-first-key'],
    {},
  );
  if (loaded.help) throw new Error('unexpected help');
  mirror = await openMirror(loaded.config, createLogger({ name: 'property', level: 'silent' }), {
    defaultMetrics: false,
    useEvents: false,
  });
  await mirror.app.listen({ host: '127.0.0.1', port: 0 });
  mirrorPort = (mirror.app.server.address() as AddressInfo).port;
});

afterAll(async () => {
  await mirror?.close();
  upstream?.closeAllConnections();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
  await rm(dataDir, { recursive: true, force: true });
  await rm(join(dirname(dataDir), `${CANARY}.json`), { force: true });
});

function rawGet(target: string, method: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(mirrorPort, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.setTimeout(5_000, () => socket.destroy(new Error(`no answer to ${JSON.stringify(target.slice(0, 80))}`)));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.write(`${method} ${target} HTTP/1.1\r\nHost: mirror.test\r\nConnection: close\r\n\r\n`, 'latin1');
  });
}

const piece = fc.oneof(
  fc.constantFrom(
    '..',
    '.',
    '/',
    '//',
    '%2e%2e',
    '%2E%2e',
    '.%2e',
    '%2f',
    '%2F',
    '%5c',
    '\\',
    '%00',
    '%252e%252e',
    '%252f',
    '%25',
    '%zz',
    '%c0%ae',
    '~',
    '$',
    '@',
    'p2',
    'acme',
    'foo.json',
    '.git',
    'etc',
    'passwd',
    'canary.json',
    CANARY,
    'sync',
    'v1',
    'state',
    'api',
    'admin',
    'metrics',
    'health',
    'objects',
    'http://evil.example',
    '//evil.example',
    '?',
    '#',
    '?since=1',
    '?x=../../',
    ';',
    '%3f',
    '%23',
    'é',
    '\u00ff',
  ),
  fc.stringMatching(/^[a-z0-9_.~-]{1,8}$/),
  fc.string({ unit: fc.constantFrom(...'abc./\\%?#&=:@;'.split('')), maxLength: 6 }),
);
const target = fc
  .tuple(fc.constantFrom('/', '', '//', '/../', '/p2/', 'http://evil.example/', '*'), fc.array(piece, { maxLength: 10 }))
  .map(([head, parts]) => `${head}${parts.join('')}`.replace(/[\r\n ]/g, ''))
  .filter((t) => t.length > 0);

describe('mirror serving paths (property)', () => {
  it('answers any raw request target without a 5xx or a byte from outside, and proxies only repository paths', async () => {
    let proxied = 0;
    await fc.assert(
      fc.asyncProperty(target, fc.constantFrom('GET', 'HEAD'), async (requestTarget, method) => {
        const before = upstreamTargets.length;
        const response = await rawGet(requestTarget, method);
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? Number.NaN);
        expect(status, `${method} ${requestTarget} -> ${response.slice(0, 200)}`).toBeGreaterThanOrEqual(200);
        expect(status, `${method} ${requestTarget} -> ${response.slice(0, 200)}`).toBeLessThan(500);
        expect(response.includes(CANARY_CONTENT), `${requestTarget} leaked the canary`).toBe(false);
        for (const sent of upstreamTargets.slice(before)) {
          proxied++;
          const [path = '', query] = sent.split('?', 2);
          expect(path.startsWith('/base/'), `upstream got ${sent}`).toBe(true);
          const repoPath = path.slice('/base/'.length);
          expect(isRepoPath(repoPath) && !isReservedPath(repoPath), `${requestTarget} reached upstream as ${sent}`).toBe(true);
          if (query !== undefined)
            expect(query, `upstream query of ${sent}`).toMatch(/^[A-Za-z0-9_.~-]+=[A-Za-z0-9_.~-]*(&[A-Za-z0-9_.~-]+=[A-Za-z0-9_.~-]*)*$/);
        }
      }),
      { numRuns: 300 },
    );
    // Valid paths do reach the proxy fallback: the namespace check is not just refusing everything.
    expect(proxied).toBeGreaterThan(0);
  });
});
