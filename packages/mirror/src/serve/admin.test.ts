import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { syncedTestMirror } from '../../test/synced-mirror.js';
import { createDrainState } from '../health.js';
import { type Mirror } from '../mirror.js';
import { registerAdminRoutes } from './admin.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const TOKEN = 'admin-secret-token';
const p2Body = JSON.stringify({ packages: { 'acme/foo': [{ version: '1.0.0' }] } });

/** A real mirror (app + syncer) caught up with an in-process fake primary. */
async function syncedMirror(extra: string[]): Promise<Mirror> {
  const files = { 'packages.json': '{"packages":[],"metadata-url":"/p2/%package%.json"}', 'p2/acme/foo.json': p2Body };
  return (await syncedTestMirror(files, extra, cleanups)).mirror;
}

const drainRequest = (token?: string) => ({
  method: 'POST' as const,
  url: '/admin/drain',
  headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
});

describe('POST /admin/drain', () => {
  it('answers 401 without a token and with a wrong one, and stays fresh', async () => {
    const mirror = await syncedMirror(['--admin-token', TOKEN]);
    const missing = await mirror.app.inject(drainRequest());
    expect(missing.statusCode).toBe(401);
    expect(missing.json()).toMatchObject({ code: 'METASYNC_ERR_AUTH_MISSING' });
    const wrong = await mirror.app.inject(drainRequest(`${TOKEN}x`));
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json()).toMatchObject({ code: 'METASYNC_ERR_AUTH_INVALID' });
    const fresh = await mirror.app.inject({ url: '/health/fresh' });
    expect(fresh.statusCode).toBe(200);
    expect(mirror.drain.draining).toBe(false);
  });

  it('with the right token: reports draining, /health/fresh fails closed with 503 draining, files are still served', async () => {
    const mirror = await syncedMirror(['--admin-token', TOKEN]);
    const drained = await mirror.app.inject(drainRequest(TOKEN));
    expect(drained.statusCode).toBe(200);
    expect(drained.json()).toMatchObject({ draining: true, dns: 'off', mirrorId: mirror.mirrorId, seq: 1 });
    const health = await mirror.app.inject({ url: '/health/fresh' });
    expect(health.statusCode).toBe(503);
    expect(health.body).toBe('draining\n');
    const file = await mirror.app.inject({ url: '/p2/acme/foo.json' });
    expect(file.statusCode).toBe(200);
    expect(file.body).toBe(p2Body);
    // Idempotent: a second drain answers the same.
    expect((await mirror.app.inject(drainRequest(TOKEN))).statusCode).toBe(200);
  });

  it('reads the token from --admin-token-file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mirror-admin-token-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'token'), `${TOKEN}\n`);
    const mirror = await syncedMirror(['--admin-token-file', join(dir, 'token')]);
    expect((await mirror.app.inject(drainRequest(TOKEN))).statusCode).toBe(200);
  });

  it('answers 404 when no admin token is configured, whatever the request carries', async () => {
    const mirror = await syncedMirror([]);
    const response = await mirror.app.inject(drainRequest(TOKEN));
    expect(response.statusCode).toBe(404);
    expect(response.json().message).toContain('no admin token');
    expect((await mirror.app.inject({ url: '/health/fresh' })).statusCode).toBe(200);
  });
});

describe('drain with DNS self-registration', () => {
  const appWith = (withdrawFromDns: () => Promise<void>) => {
    const app = Fastify();
    const drain = createDrainState();
    registerAdminRoutes(app, { adminToken: TOKEN, drain, mirrorId: 'm1', appliedSeq: () => 7, withdrawFromDns, nowMs: () => 1_000 });
    cleanups.push(() => app.close());
    return { app, drain };
  };

  it('answers only after the DNS withdraw finished, and concurrent drains share one withdraw', async () => {
    let calls = 0;
    let finish: () => void = () => undefined;
    const { app, drain } = appWith(() => {
      calls++;
      return new Promise<void>((resolve) => {
        finish = resolve;
      });
    });
    let answered = false;
    const first = app.inject(drainRequest(TOKEN)).then((r) => {
      answered = true;
      return r;
    });
    const second = app.inject(drainRequest(TOKEN));
    for (let i = 0; i < 50 && calls === 0; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(drain.draining).toBe(true);
    expect(answered).toBe(false);
    finish();
    expect((await first).json()).toEqual({ draining: true, dns: 'withdrawn', mirrorId: 'm1', seq: 7, drainingSinceMs: 1_000 });
    expect((await second).statusCode).toBe(200);
    expect(calls).toBe(1);
  });

  it('a failed withdraw answers 502, stays draining, and the next request tries again', async () => {
    let calls = 0;
    const { app, drain } = appWith(() => (++calls === 1 ? Promise.reject(new Error('Throttling: rate exceeded')) : Promise.resolve()));
    const failed = await app.inject(drainRequest(TOKEN));
    expect(failed.statusCode).toBe(502);
    expect(failed.json().message).toContain('Throttling: rate exceeded');
    expect(drain.draining).toBe(true);
    expect((await app.inject(drainRequest(TOKEN))).statusCode).toBe(200);
    expect(calls).toBe(2);
  });
});
