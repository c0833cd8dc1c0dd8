import { afterEach, describe, expect, it } from 'vitest';
import { publish, startTestPrimary, type TestPrimary } from './primary-fixture.js';

let primary: TestPrimary;
afterEach(async () => {
  await primary.close();
});

const url = (since: string | number) => `/metadata/changes.json?since=${since}`;

describe('packagist-compatible changes.json', () => {
  it('lists update and delete actions for p2 paths since T (1/10000 s) and a timestamp to continue from', async () => {
    primary = await startTestPrimary();
    await publish(primary, 'packages.json', '{}');
    const since = primary.core.publisher.headTime() * 10 + 1;
    await publish(primary, 'p2/acme/foo.json', '{"v":1}');
    await publish(primary, 'p2/acme/foo~dev.json', '{"v":1}');
    await publish(primary, 'p2/acme/bar.json', '{"v":1}');
    await primary.core.publisher.submit([{ path: 'p2/acme/bar.json', deleted: true }], 'api');
    const response = await primary.app.inject({ url: url(since) });
    expect(response.statusCode).toBe(200);
    const body = response.json<{ actions: { type: string; package: string; time: number }[]; timestamp: number }>();
    expect(body.actions.map((a) => [a.type, a.package])).toEqual([
      ['update', 'acme/foo'],
      ['update', 'acme/foo~dev'],
      ['delete', 'acme/bar'],
    ]);
    expect(body.actions[0]!.time).toBe(Math.floor(primary.core.publisher.getEntry('p2/acme/foo.json')!.mtime / 1000));
    expect(body.timestamp).toBe(primary.core.publisher.headTime() * 10 + 1);
    const next = await primary.app.inject({ url: url(body.timestamp) });
    expect(next.json()).toEqual({ actions: [], timestamp: body.timestamp });
    await publish(primary, 'p2/acme/baz.json', '{"v":1}');
    const after = await primary.app.inject({ url: url(body.timestamp) });
    expect(after.json<{ actions: { package: string }[] }>().actions.map((a) => a.package)).toEqual(['acme/baz']);
  });

  it.each(['', 'abc', '0', '-5', '1e9'])('answers since=%s with 400 and a fresh timestamp', async (since) => {
    primary = await startTestPrimary();
    const before = Date.now() * 10;
    const response = await primary.app.inject({ url: since === '' ? '/metadata/changes.json' : url(since) });
    expect(response.statusCode).toBe(400);
    const body = response.json<{ error: string; timestamp: number }>();
    expect(body.error).toMatch(/since/);
    expect(body.timestamp).toBeGreaterThanOrEqual(before);
  });

  it('answers a resync action when since is older than the journal keeps', async () => {
    primary = await startTestPrimary({ keepGenerations: 2 });
    const since = Date.now() * 10 - 10;
    for (let i = 0; i < 5; i++) await publish(primary, `p2/acme/p${i}.json`, `{"i":${i}}`);
    const body = (await primary.app.inject({ url: url(since) })).json<{ actions: { type: string; package: string }[] }>();
    expect(body.actions).toEqual([{ type: 'resync', package: '*', time: expect.any(Number) }]);
  });
});
