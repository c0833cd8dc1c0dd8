import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { installWithComposer } from './helpers/composer-client.js';
import { freePort } from './helpers/free-port.js';
import {
  getChecked,
  makeTempDir,
  PUBLISH_TOKEN,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * Dist archives through the mirror network, with Debian's Composer 2.5:
 *
 *   origin (loopback, archives built here) <- mirror 1 (--dists-url names it) <- composer install
 *   origin stopped -> a fresh project, empty cache, the lock from before -> composer install from mirror 1
 *   origin back with other bytes for the same references -> mirror 2 refuses them, serves the pinned bytes
 */
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const sha1 = (bytes: Buffer) => createHash('sha1').update(bytes).digest('hex');
const UTIL_REF = 'a'.repeat(40);
const LIB_REF = 'b'.repeat(40);
const BAD_REF = 'd'.repeat(40);

interface Origin {
  url: string;
  server: Server;
  /** path -> bytes served. */
  files: Map<string, Buffer>;
  /** Every request: path and User-Agent. */
  hits: Array<{ path: string; agent: string }>;
  stop(): Promise<void>;
}

async function startOrigin(files: Map<string, Buffer>, port = 0): Promise<Origin> {
  const hits: Origin['hits'] = [];
  const server = createServer((request, response) => {
    const path = request.url ?? '';
    hits.push({ path, agent: String(request.headers['user-agent']) });
    const body = files.get(path);
    if (body === undefined) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/zip', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`,
    server,
    files,
    hits,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A zip holding one PHP file, built by PHP's ZipArchive (what Composer itself reads zips with). */
async function buildZip(dir: string, name: string, content: string): Promise<Buffer> {
  const path = join(dir, `${name}.zip`);
  execFileSync(
    'php',
    [
      '-r',
      '$z = new ZipArchive(); $z->open($argv[1], ZipArchive::CREATE); $z->addFromString("src/Main.php", $argv[2]); $z->addFromString("README.md", "test archive"); $z->close();',
      path,
      content,
    ],
    {
      timeout: 20_000,
    },
  );
  return readFile(path);
}

async function publish(primaryUrl: string, name: string, version: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${primaryUrl}/api/v1/packages/${name}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${PUBLISH_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ versions: [version] }),
    signal: AbortSignal.timeout(10_000),
  });
  if (response.status >= 300) throw new Error(`publish ${name}: ${response.status} ${await response.text()}`);
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  let total = 0;
  for (const line of text.split('\n')) if (line.startsWith(name)) total += Number(line.split(' ').at(-1));
  return total;
}

let primary: RunningPrimary | undefined;
const mirrors: RunningMirror[] = [];
let origin: Origin | undefined;

afterAll(async () => {
  for (const mirror of mirrors) await mirror.stop();
  await primary?.stop();
  await origin?.stop();
  await removeTempDirs();
});

describe('composer install through mirrors carrying the dist archives', () => {
  it('installs from the mirror, again with the origin down and an empty cache, and every mirror serves the pinned bytes after the origin changed them', async () => {
    const work = await makeTempDir('e2e-dists-');
    const utilZip = await buildZip(work, 'util', '<?php // util 1.0.0, first build');
    const libZip = await buildZip(work, 'lib', '<?php // lib 1.0.0, first build');
    const utilPath = `/acme/util/${UTIL_REF}.zip`;
    const libPath = `/acme/lib/${LIB_REF}.zip`;
    const badPath = `/acme/bad/${BAD_REF}.zip`;
    origin = await startOrigin(
      new Map([
        [utilPath, utilZip],
        [libPath, libZip],
        [badPath, libZip],
      ]),
    );
    const originPort = Number(new URL(origin.url).port);

    // The dists URL is the name clients resolve; here, mirror 1's address, chosen before either starts.
    const mirrorPort = await freePort();
    const distsUrl = `http://127.0.0.1:${mirrorPort}`;
    primary = await startPrimary({ args: ['--dists-url', distsUrl] });
    // util carries a shasum (checked by the mirror), lib none.
    await publish(primary.url, 'acme/util', {
      version: '1.0.0',
      dist: { type: 'zip', url: `${origin.url}${utilPath}`, reference: UTIL_REF, shasum: sha1(utilZip) },
    });
    // A dist whose bytes do not match its shasum: never pinned, never served.
    await publish(primary.url, 'acme/bad', {
      version: '1.0.0',
      dist: { type: 'zip', url: `${origin.url}${badPath}`, reference: BAD_REF, shasum: sha1(utilZip) },
    });
    await publish(primary.url, 'acme/lib', {
      version: '1.0.0',
      require: { 'acme/util': '^1.0' },
      dist: { type: 'zip', url: `${origin.url}${libPath}`, reference: LIB_REF },
    });
    const distArgs = ['--dist-allow-hosts', '127.0.0.1', '--dist-allow-private'];
    const mirror1 = await startMirror({
      primaryUrl: primary.url,
      keyArg: primary.keyArg,
      args: [...distArgs, '--listen', `127.0.0.1:${mirrorPort}`],
    });
    mirrors.push(mirror1);
    expect(mirror1.url).toBe(distsUrl);
    await waitFor(async () => (await getChecked(`${mirror1.url}/p2/acme/lib.json`)).headers.get('x-metasync-proxied') === null, {
      what: 'mirror 1 synced',
    });
    const p2 = JSON.parse((await getChecked(`${mirror1.url}/p2/acme/util.json`)).body.toString()) as {
      packages: Record<string, Array<{ dist: { url: string; mirrors: unknown } }>>;
    };
    expect(p2.packages['acme/util']![0]!.dist.url).toBe(`${origin.url}${utilPath}`);
    expect(p2.packages['acme/util']![0]!.dist.mirrors).toEqual([
      { url: `${distsUrl}/dists/%package%/%reference%.%type%`, preferred: true },
    ]);

    // Two clients missing the same archive at once: one origin fetch.
    const [first, second] = await Promise.all([
      getChecked(`${mirror1.url}/dists/acme/util/${UTIL_REF}.zip`),
      getChecked(`${mirror1.url}/dists/acme/util/${UTIL_REF}.zip`),
    ]);
    expect([first.status, second.status], first.body.toString().slice(0, 300)).toEqual([200, 200]);
    expect(sha256(first.body)).toBe(sha256(utilZip));
    expect(sha256(second.body)).toBe(sha256(utilZip));
    expect(origin.hits.filter((hit) => hit.path === utilPath)).toHaveLength(1);

    // What download clients expect of a static file: HEAD, validators, one byte range, 416 past the end.
    const archiveUrl = `${mirror1.url}/dists/acme/util/${UTIL_REF}.zip`;
    const head = await fetch(archiveUrl, { method: 'HEAD', signal: AbortSignal.timeout(10_000) });
    expect([head.status, head.headers.get('content-length'), head.headers.get('accept-ranges')]).toEqual([
      200,
      String(utilZip.length),
      'bytes',
    ]);
    const notModified = await fetch(archiveUrl, {
      headers: { 'if-none-match': `"${sha256(utilZip)}"` },
      signal: AbortSignal.timeout(10_000),
    });
    expect(notModified.status).toBe(304);
    const ranged = await fetch(archiveUrl, { headers: { range: 'bytes=4-13' }, signal: AbortSignal.timeout(10_000) });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 4-13/${utilZip.length}`);
    expect(Buffer.from(await ranged.arrayBuffer())).toEqual(utilZip.subarray(4, 14));
    const beyond = await fetch(archiveUrl, { headers: { range: `bytes=${utilZip.length + 10}-` }, signal: AbortSignal.timeout(10_000) });
    expect(beyond.status).toBe(416);
    // An archive the metadata does not name: 404 (Composer then tries the dist url), and nothing fetched.
    expect((await fetch(`${mirror1.url}/dists/acme/util/${'c'.repeat(40)}.zip`, { signal: AbortSignal.timeout(10_000) })).status).toBe(404);

    const bad = await fetch(`${mirror1.url}/dists/acme/bad/${BAD_REF}.zip`, { signal: AbortSignal.timeout(30_000) });
    expect(bad.status).toBe(502);
    expect(((await bad.json()) as { code: string }).code).toBe('METASYNC_ERR_DIST_CHECKSUM_MISMATCH');

    // 1. composer install (no lock yet: resolves, then installs every dist) through mirror 1.
    const projectA = join(work, 'a');
    await mkdir(projectA);
    await installWithComposer({ dir: projectA, repoUrl: mirror1.url, require: { 'acme/lib': '^1.0' } });
    expect(await readFile(join(projectA, 'vendor/acme/util/src/Main.php'), 'utf8')).toBe('<?php // util 1.0.0, first build');
    expect(await readFile(join(projectA, 'vendor/acme/lib/src/Main.php'), 'utf8')).toBe('<?php // lib 1.0.0, first build');
    const lock = JSON.parse(await readFile(join(projectA, 'composer.lock'), 'utf8')) as {
      packages: Array<{ dist: { mirrors?: unknown } }>;
    };
    for (const pkg of lock.packages)
      expect(pkg.dist.mirrors).toEqual([{ url: `${distsUrl}/dists/%package%/%reference%.%type%`, preferred: true }]);
    // Composer took both archives from the mirror: the origin saw one fetch of each, both by the mirror.
    expect(
      origin.hits
        .map((hit) => hit.path)
        .filter((path) => path !== badPath)
        .sort(),
    ).toEqual([libPath, utilPath]);
    expect(origin.hits.every((hit) => hit.agent === 'metasync-mirror')).toBe(true);

    // 2. The origin goes away; a fresh project with an empty cache installs from the lock, through the mirror alone.
    await origin.stop();
    const projectB = join(work, 'b');
    await mkdir(projectB);
    await copyFile(join(projectA, 'composer.lock'), join(projectB, 'composer.lock'));
    await installWithComposer({ dir: projectB, repoUrl: mirror1.url, require: { 'acme/lib': '^1.0' } });
    expect(await readFile(join(projectB, 'vendor/acme/util/src/Main.php'), 'utf8')).toBe('<?php // util 1.0.0, first build');
    expect(await readFile(join(projectB, 'vendor/acme/lib/src/Main.php'), 'utf8')).toBe('<?php // lib 1.0.0, first build');

    // 3. The origin comes back regenerating the archives: other bytes for the same references.
    const libRebuilt = await buildZip(work, 'lib2', '<?php // lib 1.0.0, rebuilt by the code host');
    expect(sha256(libRebuilt)).not.toBe(sha256(libZip));
    origin = await startOrigin(new Map([[libPath, libRebuilt]]), originPort);
    // Mirror 2 never saw the archive: the origin's new bytes differ from the pin, so it serves the pinned ones
    // (from the mirror that pinned them), never the new ones.
    const mirror2 = await startMirror({ primaryUrl: primary.url, keyArg: primary.keyArg, args: distArgs });
    mirrors.push(mirror2);
    await waitFor(async () => (await getChecked(`${mirror2.url}/p2/acme/lib.json`)).headers.get('x-metasync-proxied') === null, {
      what: 'mirror 2 synced',
    });
    for (const mirror of [mirror1, mirror2]) {
      const answer = await getChecked(`${mirror.url}/dists/acme/lib/${LIB_REF}.zip`);
      expect(answer.status).toBe(200);
      expect(sha256(answer.body)).toBe(sha256(libZip));
      expect(answer.headers.get('etag')).toBe(`"${sha256(libZip)}"`);
      expect(answer.headers.get('content-type')).toBe('application/zip');
    }
    const util2 = await getChecked(`${mirror2.url}/dists/acme/util/${UTIL_REF}.zip`);
    expect(sha256(util2.body)).toBe(sha256(utilZip));

    // 4. With the pinning mirror gone too, a third mirror gets only the origin's new bytes: refused (502, counted), never served.
    await mirror1.stop();
    const mirror3 = await startMirror({ primaryUrl: primary.url, keyArg: primary.keyArg, args: distArgs });
    mirrors.push(mirror3);
    await waitFor(async () => (await getChecked(`${mirror3.url}/p2/acme/lib.json`)).headers.get('x-metasync-proxied') === null, {
      what: 'mirror 3 synced',
    });
    const refused = await fetch(`${mirror3.url}/dists/acme/lib/${LIB_REF}.zip`, { signal: AbortSignal.timeout(30_000) });
    expect(refused.status).toBe(502);
    expect(((await refused.json()) as { code: string }).code).toBe('METASYNC_ERR_DIST_PIN_MISMATCH');
    expect(await metric(mirror3.url, 'metasync_mirror_dist_pin_mismatch_total')).toBeGreaterThanOrEqual(1);
  }, 240_000);
});
