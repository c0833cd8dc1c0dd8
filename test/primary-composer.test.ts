/**
 * The primary end to end, as built (dist/) and spawned: Debian's real Composer
 * 2.5 client resolves from it, for a tree dropped into --source and for packages
 * published through the API; publishes are announced on the SSE push stream;
 * bad publish input is refused without changing the head.
 */
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderPackage, renderRootPackagesJson } from '@metasync/primary';
import { resolveWithComposer } from './helpers/composer-client.js';
import { generateCorpus, packageVersions, writeCorpusTree } from './helpers/corpus.js';
import { startDaemon, type Daemon } from './helpers/daemon.js';
import { waitFor } from './helpers/wait-for.js';

const TOKEN = 'e2e-publish-token';
const dist = (name: string, version: string) => ({
  type: 'zip',
  url: `https://dist.example.test/${name}/${version}.zip`,
  reference: `${name}-${version}`.replace(/\W/g, ''),
});
const version = (name: string, v: string, extra: Record<string, unknown> = {}) => ({ version: v, dist: dist(name, v), ...extra });

let base: string;
let source: string;
let primary: Daemon;
/** A generated package with at least one stable version. */
let corpusPackage: string;
const streams: ClientRequest[] = [];

interface HeadStream {
  heads: Array<{ seq: number; atMs: number }>;
}

/** Subscribes to /sync/v1/events and records every `head` event with its arrival time. */
function openHeadStream(url: string): Promise<HeadStream> {
  return new Promise((resolve, reject) => {
    const stream: HeadStream = { heads: [] };
    const req = httpRequest(`${url}/sync/v1/events`, { agent: false }, (res) => {
      let buffer = '';
      res.setEncoding('utf8').on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = /^event: head\n(?:.*\n)*?data: (.*)$/m.exec(block)?.[1];
          if (data !== undefined) stream.heads.push({ seq: (JSON.parse(data) as { seq: number }).seq, atMs: performance.now() });
        }
      });
      resolve(stream);
    });
    req.on('error', reject);
    req.end();
    streams.push(req);
  });
}

async function headSeq(): Promise<number> {
  const res = await fetch(`${primary.url}/sync/v1/state`);
  return ((await res.json()) as { seq: number }).seq;
}

/** A raw HTTP call (no URL normalization, so `../x` reaches the server as sent). */
function rawRequest(options: {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(primary.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: hostname, port, method: options.method, path: options.path, headers: options.headers, agent: false },
      (res) => {
        let text = '';
        res
          .setEncoding('utf8')
          .on('data', (chunk: string) => (text += chunk))
          .on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

async function publish(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown>; doneMs: number }> {
  const res = await fetch(`${primary.url}/api/v1/packages/${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await res.json()) as Record<string, unknown>;
  return { status: res.status, json, doneMs: performance.now() };
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'metasync-e2e-composer-'));
  source = join(base, 'source');
  // A generated corpus plus a small dependency chain written the way Satis would: our renderer's bytes.
  const corpus = generateCorpus({ packages: 40, seed: 11 });
  await writeCorpusTree(source, corpus);
  const lib = renderPackage('acme/lib', [
    version('acme/lib', '1.0.0'),
    version('acme/lib', '1.1.0'),
    version('acme/lib', '2.0.0'),
    version('acme/lib', 'dev-main', { extra: { 'branch-alias': { 'dev-main': '2.1.x-dev' } } }),
  ]);
  const app = renderPackage('acme/app', [
    version('acme/app', '1.0.0', { require: { 'acme/lib': '^1.0' } }),
    version('acme/app', 'dev-main', { require: { 'acme/lib': 'dev-main' } }),
  ]);
  await mkdir(join(source, 'p2/acme'), { recursive: true });
  await writeFile(join(source, 'p2/acme/lib.json'), lib.tagged!);
  await writeFile(join(source, 'p2/acme/lib~dev.json'), lib.dev!);
  await writeFile(join(source, 'p2/acme/app.json'), app.tagged!);
  await writeFile(join(source, 'p2/acme/app~dev.json'), app.dev!);
  // No available-packages list: Composer asks for each name and takes a 404 as "not here".
  await writeFile(join(source, 'packages.json'), renderRootPackagesJson({ availablePackages: undefined }));
  primary = await startDaemon({
    bin: 'primary',
    args: ['--source', source, '--data', join(base, 'data'), '--listen', '127.0.0.1:0'],
    env: { METASYNC_PUBLISH_TOKEN: TOKEN },
  });
  corpusPackage = corpus.packages.find((pkg) => packageVersions(pkg).some((v) => /^\d+\.\d+\.\d+$/.test(String(v.version))))!.name;
});

afterAll(async () => {
  for (const req of streams.splice(0)) req.destroy();
  await primary?.stop();
  await rm(base, { recursive: true, force: true });
});

describe('primary with the real Composer client', () => {
  it('resolves tagged and dev versions from a tree dropped into --source', async () => {
    const tagged = await resolveWithComposer({ repoUrl: primary.url, require: { 'acme/app': '^1.0' } });
    expect(tagged.versions).toEqual({ 'acme/app': '1.0.0', 'acme/lib': '1.1.0' });
    const dev = await resolveWithComposer({ repoUrl: primary.url, require: { 'acme/app': 'dev-main' }, minimumStability: 'dev' });
    expect(dev.versions).toEqual({ 'acme/app': 'dev-main', 'acme/lib': 'dev-main' });
    const fromCorpus = await resolveWithComposer({ repoUrl: primary.url, require: { [corpusPackage]: '*' } });
    expect(Object.keys(fromCorpus.versions)).toEqual([corpusPackage]);
    console.log(`composer resolved from the source tree in ${tagged.durationMs} / ${dev.durationMs} / ${fromCorpus.durationMs} ms`);
  }, 60_000);

  it('resolves packages published through the API, and forgets a deleted version', async () => {
    const put = await publish('PUT', 'api-vendor/widget', {
      versions: [version('api-vendor/widget', '1.0.0'), version('api-vendor/widget', 'dev-main')],
    });
    expect(put.status).toBe(200);
    const post = await publish(
      'POST',
      'api-vendor/widget/versions',
      version('api-vendor/widget', '1.2.0', { require: { 'acme/lib': '^2.0' } }),
    );
    expect(post.json).toMatchObject({ package: 'api-vendor/widget', versions: 3 });
    const tagged = await resolveWithComposer({ repoUrl: primary.url, require: { 'api-vendor/widget': '^1.0' } });
    expect(tagged.versions).toEqual({ 'api-vendor/widget': '1.2.0', 'acme/lib': '2.0.0' });
    const dev = await resolveWithComposer({ repoUrl: primary.url, require: { 'api-vendor/widget': 'dev-main' }, minimumStability: 'dev' });
    expect(dev.versions).toEqual({ 'api-vendor/widget': 'dev-main' });
    expect((await publish('DELETE', 'api-vendor/widget/versions/1.2.0')).status).toBe(200);
    const after = await resolveWithComposer({ repoUrl: primary.url, require: { 'api-vendor/widget': '^1.0' } });
    expect(after.versions).toEqual({ 'api-vendor/widget': '1.0.0' });
    expect((await publish('DELETE', 'api-vendor/widget')).json).toMatchObject({ versions: 0 });
    await expect(resolveWithComposer({ repoUrl: primary.url, require: { 'api-vendor/widget': '*' } })).rejects.toThrow(
      /could not be found/,
    );
  }, 90_000);

  it('announces an API publish and a source-tree drop on the push stream within 50 ms', async () => {
    const stream = await openHeadStream(primary.url);
    await waitFor(() => stream.heads.length > 0, { what: 'initial head event', timeoutMs: 5_000 });
    const apiLatencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await publish('POST', 'api-vendor/latency/versions', version('api-vendor/latency', `1.0.${i}`));
      expect(res.status).toBe(200);
      const seq = res.json.seq as number;
      const head = await waitFor(() => stream.heads.find((h) => h.seq >= seq), { what: `head ${seq}`, timeoutMs: 2_000, intervalMs: 1 });
      apiLatencies.push(Math.max(0, head.atMs - res.doneMs));
    }
    const sourceLatencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const seqBefore = await headSeq();
      const temp = join(source, 'p2/acme/.drop.json.tmp');
      const rendered = renderPackage('acme/dropped', [version('acme/dropped', `1.0.${i}`)]).tagged!;
      await writeFile(temp, rendered);
      await rename(temp, join(source, 'p2/acme/dropped.json'));
      const droppedMs = performance.now();
      const head = await waitFor(() => stream.heads.find((h) => h.seq > seqBefore), {
        what: 'head after drop',
        timeoutMs: 5_000,
        intervalMs: 1,
      });
      sourceLatencies.push(Math.max(0, head.atMs - droppedMs));
    }
    // The tree owns packages.json (the API left it alone), so a tree package added after API publishes resolves too.
    const dropped = await resolveWithComposer({ repoUrl: primary.url, require: { 'acme/dropped': '^1.0' } });
    expect(dropped.versions).toEqual({ 'acme/dropped': '1.0.4' });
    const fmt = (values: number[]) => values.map((v) => v.toFixed(1)).join(', ');
    console.log(
      `push stream: API publish response -> head event [${fmt(apiLatencies)}] ms; source drop (rename) -> head event [${fmt(sourceLatencies)}] ms`,
    );
    // 50 ms is the target; the bound is generous for a loaded 2-core CI box, the figures above are the measurement.
    expect(Math.min(...apiLatencies)).toBeLessThan(50);
    expect(Math.max(...apiLatencies)).toBeLessThan(500);
    expect(Math.max(...sourceLatencies)).toBeLessThan(1_000);
    expect([...sourceLatencies].sort((a, b) => a - b)[2]!).toBeLessThan(100); // the median
  }, 60_000);

  it('refuses bad publish input with the right 4xx and leaves the head unchanged', async () => {
    const seq = await headSeq();
    const json = { 'content-type': 'application/json' };
    const good = JSON.stringify({ versions: [version('acme/x', '1.0.0')] });
    const cases: Array<{
      title: string;
      method: string;
      path: string;
      headers: Record<string, string>;
      body?: string;
      status: number;
      code: string;
    }> = [
      {
        title: 'malformed JSON',
        method: 'PUT',
        path: '/api/v1/packages/acme/x',
        headers: { ...json, authorization: `Bearer ${TOKEN}` },
        body: '{"versions":[',
        status: 400,
        code: 'METASYNC_ERR_REQUEST_INVALID',
      },
      {
        title: 'no token',
        method: 'PUT',
        path: '/api/v1/packages/acme/x',
        headers: json,
        body: good,
        status: 401,
        code: 'METASYNC_ERR_AUTH_MISSING',
      },
      {
        title: 'wrong token',
        method: 'PUT',
        path: '/api/v1/packages/acme/x',
        headers: { ...json, authorization: 'Bearer nope' },
        body: good,
        status: 401,
        code: 'METASYNC_ERR_AUTH_INVALID',
      },
      // Announces 9 MiB (above the 8 MiB default) but sends little: the primary must refuse on the header alone,
      // and the client never writes into a closed socket (EPIPE) as it would while streaming 9 MiB.
      {
        title: 'oversized body',
        method: 'PUT',
        path: '/api/v1/packages/acme/x',
        headers: { ...json, authorization: `Bearer ${TOKEN}`, 'content-length': String(9 * 1024 * 1024) },
        body: good,
        status: 413,
        code: 'METASYNC_ERR_REQUEST_TOO_LARGE',
      },
      {
        title: '../x',
        method: 'PUT',
        path: '/api/v1/packages/../x',
        headers: { ...json, authorization: `Bearer ${TOKEN}` },
        body: good,
        status: 422,
        code: 'METASYNC_ERR_PACKAGE_INVALID',
      },
      {
        title: 'a/b/c',
        method: 'PUT',
        path: '/api/v1/packages/a/b/c',
        headers: { ...json, authorization: `Bearer ${TOKEN}` },
        body: good,
        status: 422,
        code: 'METASYNC_ERR_PACKAGE_INVALID',
      },
      {
        title: 'uppercase',
        method: 'PUT',
        path: '/api/v1/packages/Acme/X',
        headers: { ...json, authorization: `Bearer ${TOKEN}` },
        body: good,
        status: 422,
        code: 'METASYNC_ERR_PACKAGE_INVALID',
      },
    ];
    for (const c of cases) {
      const res = await rawRequest({
        method: c.method,
        path: c.path,
        headers: c.headers,
        ...(c.body === undefined ? {} : { body: c.body }),
      });
      expect({ title: c.title, status: res.status }).toEqual({ title: c.title, status: c.status });
      const body = JSON.parse(res.body) as { code: string; field?: string; rule?: string };
      expect({ title: c.title, code: body.code, named: typeof body.field === 'string' && typeof body.rule === 'string' }).toEqual({
        title: c.title,
        code: c.code,
        named: true,
      });
    }
    expect(await headSeq()).toBe(seq);
  }, 60_000);
});
