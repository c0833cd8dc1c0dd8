import { afterEach, describe, expect, it } from 'vitest';
import { syncedTestMirror } from '../../test/synced-mirror.js';
import { type Mirror } from '../mirror.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const TOKEN = 'admin-secret-token';

/** A real mirror (app + syncer) caught up with an in-process fake primary, built from real flags. */
async function syncedMirror(extra: string[]): Promise<Mirror> {
  const files = {
    'packages.json': '{"packages":[],"metadata-url":"/p2/%package%.json"}',
    'p2/acme/foo.json': JSON.stringify({ packages: { 'acme/foo': [{ version: '1.0.0' }] } }),
  };
  return (await syncedTestMirror(files, ['--admin-token', TOKEN, ...extra], cleanups)).mirror;
}

describe('admin rate limit on the mirror', () => {
  it('answers 429 with Retry-After and a JSON error past --admin-rate-limit, wrong tokens included', async () => {
    const mirror = await syncedMirror(['--admin-rate-limit', '3', '--rate-limit-window-ms', '60000']);
    const drain = (token: string) =>
      mirror.app.inject({ method: 'POST', url: '/admin/drain', headers: { authorization: `Bearer ${token}` } });
    const statuses = [(await drain('wrong-1')).statusCode, (await drain('wrong-2')).statusCode, (await drain('wrong-3')).statusCode];
    expect(statuses).toEqual([401, 401, 401]);
    const limited = await drain(TOKEN);
    expect(limited.statusCode).toBe(429);
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(limited.json()).toMatchObject({ code: 'METASYNC_ERR_RATE_LIMITED' });
    // The refused call did not drain the mirror.
    expect((await mirror.app.inject({ url: '/health/fresh' })).statusCode).toBe(200);
  });

  it('never limits serving, health or metrics routes', async () => {
    const mirror = await syncedMirror(['--admin-rate-limit', '1']);
    for (let i = 0; i < 40; i++) {
      for (const url of ['/p2/acme/foo.json', '/p2/acme/missing.json', '/healthz', '/health/fresh', '/metrics', '/packages.json']) {
        const res = await mirror.app.inject({ url });
        expect(res.statusCode, url).not.toBe(429);
      }
    }
    expect((await mirror.app.inject({ url: '/p2/acme/foo.json' })).statusCode).toBe(200);
  });

  it('turns the limit off with 0', async () => {
    const mirror = await syncedMirror(['--admin-rate-limit', '0']);
    for (let i = 0; i < 40; i++) {
      expect(
        (await mirror.app.inject({ method: 'POST', url: '/admin/drain', headers: { authorization: 'Bearer wrong' } })).statusCode,
      ).toBe(401);
    }
  });
});
