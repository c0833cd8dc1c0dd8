import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { isMetasyncError } from '../errors.js';
import { clientAddressKey, rateLimitHook, registerRateLimiting, type RateLimitSettings } from './rate-limit.js';

const apps: ReturnType<typeof Fastify>[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

async function limitedApp(settings: RateLimitSettings) {
  const app = Fastify();
  apps.push(app);
  // As the daemons' error handlers do: a project error's details go into the JSON body.
  app.setErrorHandler((err, _request, reply) =>
    isMetasyncError(err)
      ? reply.code(err.statusCode).send({ code: err.code, message: err.message, ...err.details })
      : reply.code(500).send({ message: 'internal error' }),
  );
  await registerRateLimiting(app);
  await registerRateLimiting(app); // idempotent
  const hook = rateLimitHook(app, { scope: 'admin', settings, key: clientAddressKey });
  app.post('/limited', hook === undefined ? {} : { onRequest: hook }, async () => ({ ok: true }));
  app.get('/open', async () => ({ ok: true }));
  return app;
}

describe('rateLimitHook', () => {
  it('answers 429 METASYNC_ERR_RATE_LIMITED with Retry-After past the budget, on the routes that opt in only', async () => {
    const app = await limitedApp({ max: 2, windowMs: 60_000 });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await app.inject({ method: 'POST', url: '/limited' })).statusCode);
    expect(statuses).toEqual([200, 200, 429]);
    const limited = await app.inject({ method: 'POST', url: '/limited' });
    expect(limited.statusCode).toBe(429);
    const retryAfterS = Number(limited.headers['retry-after']);
    expect(retryAfterS).toBeGreaterThanOrEqual(1);
    expect(retryAfterS).toBeLessThanOrEqual(60);
    expect(limited.json()).toMatchObject({
      code: 'METASYNC_ERR_RATE_LIMITED',
      field: 'rate',
      rule: 'admin-rate-limit',
      limit: 2,
      windowMs: 60_000,
      retryAfterS,
    });
    expect(limited.json().message).toContain('more than 2 admin requests in 60000 ms from ip:127.0.0.1');
    for (let i = 0; i < 5; i++) expect((await app.inject({ url: '/open' })).statusCode).toBe(200);
  });

  it('is undefined with max 0, leaving the route unlimited', async () => {
    const app = await limitedApp({ max: 0, windowMs: 60_000 });
    for (let i = 0; i < 10; i++) expect((await app.inject({ method: 'POST', url: '/limited' })).statusCode).toBe(200);
  });
});

describe('clientAddressKey', () => {
  it('keys IPv4 by address and IPv6 by its /64', () => {
    const key = (ip: string) => clientAddressKey({ ip } as Parameters<typeof clientAddressKey>[0]);
    expect(key('192.0.2.7')).toBe('ip:192.0.2.7');
    expect(key('2001:db8:1:2:aaaa::1')).toBe(key('2001:db8:1:2:bbbb::9'));
    expect(key('2001:db8:1:2::1')).not.toBe(key('2001:db8:1:3::1'));
  });
});
