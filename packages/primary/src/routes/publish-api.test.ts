import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@metasync/shared/daemon';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseP2File } from '../composer/render.js';
import { openPrimaryCore, type PrimaryCore } from '../data-dir.js';
import { publishApiPlugin } from './publish-api.js';

const TOKEN = 'secret-token-1';
const auth = { authorization: `Bearer ${TOKEN}` };
const version = (v: string, extra: Record<string, unknown> = {}) => ({
  version: v,
  dist: { type: 'zip', url: `https://example.org/acme-foo-${v}.zip`, reference: `ref-${v}` },
  ...extra,
});

let dir: string;
let core: PrimaryCore;
let app: FastifyInstance;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-publish-api-'));
  const log = createLogger({ name: 'test', level: 'silent' });
  core = await openPrimaryCore({
    dataDir: dir,
    signingKeyFile: undefined,
    keepGenerations: 1000,
    snapshotEveryGenerations: 1_000_000,
    snapshotIntervalMs: 3_600_000,
    log,
  });
  app = Fastify();
  await app.register(publishApiPlugin, { publisher: core.publisher, tokens: [TOKEN, 'other-token'], maxBodyBytes: 64 * 1024 });
  await app.ready();
});

afterEach(async () => {
  await app.close();
  await core.close();
  await rm(dir, { recursive: true, force: true });
});

async function versionsOf(name: string, dev = false): Promise<string[]> {
  const entry = core.publisher.getEntry(`p2/${name}${dev ? '~dev' : ''}.json`);
  if (entry === undefined) return [];
  return parseP2File(name, await core.publisher.readObject(entry.sha256)).map((v) => String(v.version));
}

async function rootNames(): Promise<unknown> {
  const entry = core.publisher.getEntry('packages.json');
  return entry === undefined
    ? undefined
    : (JSON.parse((await core.publisher.readObject(entry.sha256)).toString()) as Record<string, unknown>)['available-packages'];
}

describe('publish API', () => {
  it('replaces a version list and answers with the seq of the generation holding it', async () => {
    const res = await app.inject({
      method: 'PUT',
      url: '/api/v1/packages/acme/foo',
      headers: auth,
      payload: { versions: [version('1.0.0'), version('2.0.0'), version('dev-main')] },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ seq: core.publisher.headSeq(), package: 'acme/foo', versions: 3 });
    expect(await versionsOf('acme/foo')).toEqual(['2.0.0', '1.0.0']);
    expect(await versionsOf('acme/foo', true)).toEqual(['dev-main']);
    expect(await rootNames()).toEqual(['acme/foo']);
    expect(core.publisher.getEntry('p2/acme/foo.json')?.origin).toBe('api');
  });

  it('adds, replaces and removes single versions, and removes the package', async () => {
    await app.inject({ method: 'PUT', url: '/api/v1/packages/acme/foo', headers: auth, payload: { versions: [version('1.0.0')] } });
    const added = await app.inject({ method: 'POST', url: '/api/v1/packages/acme/foo/versions', headers: auth, payload: version('1.1.0') });
    expect(added.json()).toMatchObject({ package: 'acme/foo', versions: 2 });
    const replaced = await app.inject({
      method: 'POST',
      url: '/api/v1/packages/acme/foo/versions',
      headers: auth,
      payload: version('v1.1.0', { description: 'new' }),
    });
    expect(replaced.json()).toMatchObject({ versions: 2 });
    expect(await versionsOf('acme/foo')).toEqual(['v1.1.0', '1.0.0']);
    const removed = await app.inject({ method: 'DELETE', url: '/api/v1/packages/acme/foo/versions/1.0.0', headers: auth });
    expect(removed.json()).toMatchObject({ versions: 1 });
    expect((await app.inject({ method: 'DELETE', url: '/api/v1/packages/acme/foo/versions/9.9.9', headers: auth })).statusCode).toBe(404);
    const gone = await app.inject({ method: 'DELETE', url: '/api/v1/packages/acme/foo', headers: auth });
    expect(gone.json()).toMatchObject({ versions: 0 });
    expect(core.publisher.getEntry('p2/acme/foo.json')).toBeUndefined();
    expect(await rootNames()).toEqual([]);
    expect((await app.inject({ method: 'DELETE', url: '/api/v1/packages/acme/foo', headers: auth })).statusCode).toBe(404);
  });

  it('loses no version when many POSTs for one package race', async () => {
    const responses = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        app.inject({ method: 'POST', url: '/api/v1/packages/acme/race/versions', headers: auth, payload: version(`1.0.${i}`) }),
      ),
    );
    expect(responses.map((r) => r.statusCode)).toEqual(Array.from({ length: 40 }, () => 200));
    expect((await versionsOf('acme/race')).length).toBe(40);
    // Requests that queue behind a running update are applied together: far fewer commits than requests.
    expect(new Set(responses.map((r) => r.json<{ seq: number }>().seq)).size).toBeLessThan(10);
  });

  it('leaves a packages.json that the watched tree published to the tree', async () => {
    await core.publisher.submit(
      [{ path: 'packages.json', content: Buffer.from('{"packages":[],"metadata-url":"/p2/%package%.json"}') }],
      'watch',
    );
    const before = core.publisher.getEntry('packages.json');
    const res = await app.inject({
      method: 'PUT',
      url: '/api/v1/packages/acme/newcomer',
      headers: auth,
      payload: { versions: [version('1.0.0')] },
    });
    expect(res.statusCode).toBe(200);
    expect(core.publisher.getEntry('packages.json')).toEqual(before);
    expect(await versionsOf('acme/newcomer')).toEqual(['1.0.0']);
  });

  it('rejects only the failing request of a batch of concurrent updates', async () => {
    await app.inject({ method: 'PUT', url: '/api/v1/packages/acme/mixed', headers: auth, payload: { versions: [version('1.0.0')] } });
    const [added, missing, alsoAdded] = await Promise.all([
      app.inject({ method: 'POST', url: '/api/v1/packages/acme/mixed/versions', headers: auth, payload: version('1.1.0') }),
      app.inject({ method: 'DELETE', url: '/api/v1/packages/acme/mixed/versions/9.0.0', headers: auth }),
      app.inject({ method: 'POST', url: '/api/v1/packages/acme/mixed/versions', headers: auth, payload: version('1.2.0') }),
    ]);
    expect([added!.statusCode, missing!.statusCode, alsoAdded!.statusCode]).toEqual([200, 404, 200]);
    expect(await versionsOf('acme/mixed')).toEqual(['1.2.0', '1.1.0', '1.0.0']);
  });

  it('lists every package in packages.json when new packages race', async () => {
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        app.inject({ method: 'PUT', url: `/api/v1/packages/acme/p${i}`, headers: auth, payload: { versions: [version('1.0.0')] } }),
      ),
    );
    expect(await rootNames()).toEqual(Array.from({ length: 30 }, (_, i) => `acme/p${i}`).sort());
  });

  const rejections: Array<
    [
      string,
      { method: 'PUT' | 'POST' | 'DELETE' | 'PATCH'; url: string; headers?: Record<string, string>; payload?: string | object },
      number,
      string,
      string | undefined,
    ]
  > = [
    [
      'no token',
      { method: 'PUT', url: '/api/v1/packages/acme/foo', headers: {}, payload: { versions: [version('1.0.0')] } },
      401,
      'METASYNC_ERR_AUTH_MISSING',
      'authorization',
    ],
    [
      'a wrong token',
      {
        method: 'PUT',
        url: '/api/v1/packages/acme/foo',
        headers: { authorization: 'Bearer secret-token-2' },
        payload: { versions: [version('1.0.0')] },
      },
      401,
      'METASYNC_ERR_AUTH_INVALID',
      'authorization',
    ],
    [
      'malformed JSON',
      {
        method: 'PUT',
        url: '/api/v1/packages/acme/foo',
        headers: { ...auth, 'content-type': 'application/json' },
        payload: '{"versions": [',
      },
      400,
      'METASYNC_ERR_REQUEST_INVALID',
      'body',
    ],
    [
      'an oversized body',
      { method: 'PUT', url: '/api/v1/packages/acme/foo', payload: { versions: [version('1.0.0', { description: 'x'.repeat(70_000) })] } },
      413,
      'METASYNC_ERR_REQUEST_TOO_LARGE',
      'body',
    ],
    [
      'an uppercase name',
      { method: 'PUT', url: '/api/v1/packages/Acme/foo', payload: { versions: [version('1.0.0')] } },
      422,
      'METASYNC_ERR_PACKAGE_INVALID',
      'name',
    ],
    [
      'a three-part name',
      { method: 'PUT', url: '/api/v1/packages/a/b/c', payload: { versions: [version('1.0.0')] } },
      422,
      'METASYNC_ERR_PACKAGE_INVALID',
      'name',
    ],
    [
      'an encoded slash in the name',
      { method: 'PUT', url: '/api/v1/packages/a%2Fb/c', payload: { versions: [version('1.0.0')] } },
      422,
      'METASYNC_ERR_PACKAGE_INVALID',
      'name',
    ],
    [
      'a version Composer cannot normalize',
      { method: 'PUT', url: '/api/v1/packages/acme/foo', payload: { versions: [version('1.0.0'), version('not a version')] } },
      422,
      'METASYNC_ERR_PACKAGE_INVALID',
      'versions[1].version',
    ],
    [
      'a version without dist or source',
      { method: 'POST', url: '/api/v1/packages/acme/foo/versions', payload: { version: '1.0.0' } },
      422,
      'METASYNC_ERR_PACKAGE_INVALID',
      'body',
    ],
    [
      'a source without reference',
      {
        method: 'POST',
        url: '/api/v1/packages/acme/foo/versions',
        payload: { version: '1.0.0', source: { type: 'git', url: 'https://x' } },
      },
      422,
      'METASYNC_ERR_PACKAGE_INVALID',
      'body.source.reference',
    ],
    [
      'a body naming another package',
      { method: 'POST', url: '/api/v1/packages/acme/foo/versions', payload: version('1.0.0', { name: 'acme/bar' }) },
      422,
      'METASYNC_ERR_PACKAGE_INVALID',
      'body.name',
    ],
    [
      'duplicate versions',
      { method: 'PUT', url: '/api/v1/packages/acme/foo', payload: { versions: [version('1.0'), version('1.0.0')] } },
      422,
      'METASYNC_ERR_PACKAGE_INVALID',
      'versions[1].version',
    ],
    [
      'a versions field that is not a list',
      { method: 'PUT', url: '/api/v1/packages/acme/foo', payload: { versions: 'x' } },
      400,
      'METASYNC_ERR_REQUEST_INVALID',
      'versions',
    ],
    [
      'a method the route does not take',
      { method: 'PATCH', url: '/api/v1/packages/acme/foo' },
      400,
      'METASYNC_ERR_REQUEST_INVALID',
      'method',
    ],
    [
      'bad require links',
      { method: 'PUT', url: '/api/v1/packages/acme/foo', payload: { versions: [version('1.0.0', { require: { php: 8 } })] } },
      422,
      'METASYNC_ERR_PACKAGE_INVALID',
      'versions[0].require',
    ],
  ];

  it('rejects a dot-dot vendor sent raw over HTTP (no client-side normalization)', async () => {
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = new URL(url);
    const seq = core.publisher.headSeq();
    const payload = JSON.stringify({ versions: [version('1.0.0')] });
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, method: 'PUT', path: '/api/v1/packages/../x', headers: { ...auth, 'content-type': 'application/json' } },
        (res) => {
          let text = '';
          res
            .setEncoding('utf8')
            .on('data', (chunk: string) => (text += chunk))
            .on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
    expect(status).toBe(422);
    expect(JSON.parse(body)).toMatchObject({ code: 'METASYNC_ERR_PACKAGE_INVALID', field: 'name', rule: 'composer-package-name' });
    expect(core.publisher.headSeq()).toBe(seq);
  });

  it.each(rejections)(
    'rejects %s with the right 4xx, naming field and rule, and changes nothing',
    async (_title, request, status, code, field) => {
      await app.inject({ method: 'PUT', url: '/api/v1/packages/acme/foo', headers: auth, payload: { versions: [version('0.1.0')] } });
      const seq = core.publisher.headSeq();
      const res = await app.inject({ ...request, headers: request.headers ?? auth });
      expect(res.statusCode).toBe(status);
      const body = res.json<{ code: string; message: string; field?: string; rule?: string }>();
      expect(body).toMatchObject({ code, field });
      expect(typeof body.rule).toBe('string');
      expect(body.message.length).toBeGreaterThan(0);
      expect(core.publisher.headSeq()).toBe(seq);
      expect(await versionsOf('acme/foo')).toEqual(['0.1.0']);
    },
  );
});
