import { afterEach, describe, expect, it } from 'vitest';
import { createStaticPublishAuth } from '../src/publish/auth.js';
import { publish, startTestPrimary, TEST_TOKEN, type TestPrimary } from './primary-fixture.js';

const OTHER_TOKEN = 'second-publish-token';
const body = { versions: [{ version: '1.0.0', dist: { type: 'zip', url: 'https://example.org/a.zip', reference: 'r1' } }] };

let primary: TestPrimary | undefined;

afterEach(async () => {
  await primary?.close();
  primary = undefined;
});

async function start(publishMax: number, adminMax: number): Promise<TestPrimary> {
  primary = await startTestPrimary({
    publishAuth: createStaticPublishAuth([TEST_TOKEN, OTHER_TOKEN]),
    rateLimits: { publish: { max: publishMax, windowMs: 60_000 }, admin: { max: adminMax, windowMs: 60_000 } },
  });
  return primary;
}

const put = (p: TestPrimary, token: string | undefined, name = 'acme/foo') =>
  p.app.inject({
    method: 'PUT',
    url: `/api/v1/packages/${name}`,
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    payload: body,
  });

describe('publish and admin rate limits', () => {
  it('answers 429 with Retry-After and a JSON error once a token used up its window, without touching the journal', async () => {
    const p = await start(3, 100);
    for (let i = 0; i < 3; i++) expect((await put(p, TEST_TOKEN)).statusCode).toBe(200);
    const seq = p.core.publisher.headSeq();
    const limited = await put(p, TEST_TOKEN, 'acme/new');
    expect(limited.statusCode).toBe(429);
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(limited.json()).toMatchObject({ code: 'METASYNC_ERR_RATE_LIMITED', limit: 3, windowMs: 60_000, retryAfterS: retryAfter });
    expect(p.core.publisher.headSeq()).toBe(seq);
    expect(p.core.publisher.getEntry('p2/acme/new.json')).toBeUndefined();
  });

  it('counts each token separately, so one busy token does not block another', async () => {
    const p = await start(2, 100);
    for (let i = 0; i < 2; i++) expect((await put(p, TEST_TOKEN)).statusCode).toBe(200);
    expect((await put(p, TEST_TOKEN)).statusCode).toBe(429);
    expect((await put(p, OTHER_TOKEN)).statusCode).toBe(200);
  });

  it('limits callers without a valid token by address, so made-up tokens cannot mint fresh budgets', async () => {
    const p = await start(3, 100);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await put(p, `made-up-${i}`)).statusCode);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    expect((await put(p, undefined)).statusCode).toBe(429);
    // A valid token from the same address has its own budget.
    expect((await put(p, TEST_TOKEN)).statusCode).toBe(200);
  });

  it('limits admin calls on their own budget', async () => {
    const p = await start(100, 2);
    const snapshot = () => p.app.inject({ method: 'POST', url: '/admin/snapshot', headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    expect((await snapshot()).statusCode).toBe(200);
    expect((await snapshot()).statusCode).toBe(200);
    const limited = await snapshot();
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['retry-after']).toBeDefined();
    expect(limited.json()).toMatchObject({ code: 'METASYNC_ERR_RATE_LIMITED' });
    expect((await put(p, TEST_TOKEN)).statusCode).toBe(200);
  });

  it('never limits repository, sync or metrics reads', async () => {
    const p = await start(1, 1);
    await publish(p, 'p2/acme/a.json', '{"packages":{}}');
    for (let i = 0; i < 50; i++) {
      for (const url of ['/p2/acme/a.json', '/sync/v1/state', '/metrics']) {
        const res = await p.app.inject({ method: 'GET', url });
        expect(res.statusCode, url).toBe(200);
      }
    }
  });

  it('counts refused publish and admin calls by scope and status on /metrics', async () => {
    const p = await start(2, 1);
    await put(p, undefined); // 401
    await put(p, 'wrong'); // 401
    await put(p, TEST_TOKEN); // 200
    await put(p, TEST_TOKEN); // 200
    await put(p, TEST_TOKEN); // 429
    const snapshot = () => p.app.inject({ method: 'POST', url: '/admin/snapshot', headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    expect((await snapshot()).statusCode).toBe(200);
    expect((await snapshot()).statusCode).toBe(429);
    const text = (await p.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toContain('metasync_api_refused_total{scope="publish",status="401"} 2');
    expect(text).toContain('metasync_api_refused_total{scope="publish",status="429"} 1');
    expect(text).toContain('metasync_api_refused_total{scope="admin",status="429"} 1');
    expect(text).not.toContain('status="200"');
  });

  it('turns a limit off with 0', async () => {
    const p = await start(0, 0);
    for (let i = 0; i < 20; i++) expect((await put(p, TEST_TOKEN)).statusCode).toBe(200);
  });
});
