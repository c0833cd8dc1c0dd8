import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkOriginUrl, createOriginAgent, isPrivateAddress } from './origin-guard.js';
import { fetchArchive } from './origin-fetch.js';

describe('origin guard', () => {
  it('classifies loopback, private, link-local and mapped addresses as private, public ones not', () => {
    for (const address of [
      '127.0.0.1',
      '10.1.2.3',
      '172.20.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
    ])
      expect(isPrivateAddress(address), address).toBe(true);
    for (const address of ['140.82.112.3', '8.8.8.8', '2606:4700::1111', '::ffff:8.8.8.8'])
      expect(isPrivateAddress(address), address).toBe(false);
  });

  it('refuses other protocols, hosts outside the allowlist, credentials and private IP literals', () => {
    const policy = { allowHosts: ['github.com', '127.0.0.1'], allowPrivate: false };
    expect(checkOriginUrl('https://codeload.github.com/a/b/zip/x', policy).hostname).toBe('codeload.github.com');
    for (const url of [
      'file:///etc/passwd',
      'ftp://github.com/x',
      'https://github.com.evil.test/x',
      'https://evilgithub.com/x',
      'https://u:p@github.com/x',
      'http://127.0.0.1/x',
      'not a url',
    ])
      expect(() => checkOriginUrl(url, policy), url).toThrow(expect.objectContaining({ code: 'METASYNC_ERR_DIST_ORIGIN_REFUSED' }));
    expect(checkOriginUrl('http://127.0.0.1:8/x', { ...policy, allowPrivate: true }).port).toBe('8');
  });
});

describe('archive fetch', () => {
  let server: Server;
  let port: number;
  let dir: string;
  const requests: string[] = [];
  const big = Buffer.alloc(64 * 1024, 7);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'metasync-origin-fetch-'));
    server = createServer((request, response) => {
      const path = request.url ?? '';
      requests.push(path);
      if (path === '/ok') response.end('archive bytes');
      else if (path === '/big-declared') response.writeHead(200, { 'content-length': big.length }).end(big);
      else if (path === '/big-chunked') {
        response.writeHead(200);
        response.write(big.subarray(0, 32 * 1024));
        response.end(big.subarray(32 * 1024));
      } else if (path.startsWith('/loop')) response.writeHead(302, { location: `/loop${path.length}` }).end();
      else if (path === '/away') response.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data' }).end();
      else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  const agent = (allowPrivate: boolean) => createOriginAgent({ allowPrivate, connectTimeoutMs: 2_000, connections: 2 });
  let n = 0;
  const options = (url: string, allowPrivate = true, maxBytes = 40 * 1024) => ({
    url,
    dispatcher: agent(allowPrivate),
    policy: { allowHosts: ['127.0.0.1', 'localhost'], allowPrivate },
    maxBytes,
    timeoutMs: 5_000,
    tmpPath: join(dir, `t${n++}`),
  });

  it('streams an archive to its temp file with its sha256 and sha1', async () => {
    const fetched = await fetchArchive(options(`http://127.0.0.1:${port}/ok`));
    expect(fetched.size).toBe(13);
    expect(fetched.sha1).toBe(createHash('sha1').update('archive bytes').digest('hex'));
    expect(fetched.sha256).toBe(createHash('sha256').update('archive bytes').digest('hex'));
  });

  it('refuses a name that resolves to loopback after DNS, before any request is sent', async () => {
    const before = requests.length;
    await expect(fetchArchive(options(`http://localhost:${port}/ok`, false))).rejects.toMatchObject({
      code: 'METASYNC_ERR_DIST_FETCH_FAILED',
    });
    expect(requests.length).toBe(before);
  });

  it('cuts off an archive over the size cap, declared or streamed, and leaves no temp file', async () => {
    await expect(fetchArchive(options(`http://127.0.0.1:${port}/big-declared`))).rejects.toMatchObject({
      code: 'METASYNC_ERR_DIST_TOO_LARGE',
    });
    await expect(fetchArchive(options(`http://127.0.0.1:${port}/big-chunked`))).rejects.toMatchObject({
      code: 'METASYNC_ERR_DIST_TOO_LARGE',
    });
    expect((await readdir(dir)).filter((name) => name !== 't0')).toEqual([]);
  });

  it('follows redirects up to the limit, each hop checked against the policy', async () => {
    await expect(fetchArchive(options(`http://127.0.0.1:${port}/loop`))).rejects.toMatchObject({ code: 'METASYNC_ERR_DIST_FETCH_FAILED' });
    await expect(fetchArchive(options(`http://127.0.0.1:${port}/away`))).rejects.toMatchObject({
      code: 'METASYNC_ERR_DIST_ORIGIN_REFUSED',
    });
  });
});
