import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPdns, type Pdns } from '../../../test/helpers/pdns.js';
import { waitFor } from '../../../test/helpers/wait-for.js';
import { createPowerDnsRegistrar } from '../src/powerdns/registrar.js';
import type { Clock, MirrorEndpoint } from '../src/registrar.js';

/** Freshness endpoints the test flips between 200 `fresh` and 503 `stale`. */
async function healthServer(): Promise<{ server: Server; url: string; fresh: { value: boolean } }> {
  const fresh = { value: true };
  const server = createServer((_req, res) => {
    if (fresh.value) res.writeHead(200).end('fresh seq 1 head 1\n');
    else res.writeHead(503).end('stale: behind by 9 seq\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/health/fresh`, fresh };
}

describe('PowerDNS registrar against a real pdns_server', () => {
  let pdns: Pdns;
  const servers: Awaited<ReturnType<typeof healthServer>>[] = [];
  const slept: number[] = [];
  const clock: Clock = {
    now: () => Date.now(),
    sleep: (ms) => {
      slept.push(ms);
      return Promise.resolve();
    },
  };
  let a: MirrorEndpoint;
  let b: MirrorEndpoint;

  beforeAll(async () => {
    pdns = await startPdns({ checkIntervalS: 1 });
    await pdns.createZone('example.test');
    servers.push(await healthServer(), await healthServer());
    a = { mirrorId: 'a', region: 'eu', address: '192.0.2.10', healthUrl: servers[0]!.url };
    b = { mirrorId: 'b', region: 'eu', address: '192.0.2.11', healthUrl: servers[1]!.url };
  });
  afterAll(async () => {
    await pdns?.stop();
    for (const s of servers) s.server.close();
  });

  const registrar = () =>
    createPowerDnsRegistrar({
      apiUrl: pdns.apiUrl,
      apiKey: pdns.apiKey,
      zone: 'example.test',
      serviceName: 'repo.example.test',
      regionSubnets: { eu: ['10.1.0.0/16'] },
      ttlS: 30,
      drainMarginMs: 1_000,
      clock,
    });
  const answers = (): Promise<string[]> => pdns.dig('repo.example.test', { subnet: '10.1.0.0/24' });

  it('registers idempotently, answers only fresh mirrors, and withdraw waits one TTL plus margin', async () => {
    await registrar().register(a);
    await registrar().register(b);
    await registrar().register(a);
    expect((await registrar().list()).map((e) => e.mirrorId)).toEqual(['a', 'b']);
    await waitFor(async () => JSON.stringify(await answers()) === JSON.stringify(['192.0.2.10', '192.0.2.11']), {
      timeoutMs: 10_000,
      intervalMs: 200,
      what: 'both answers',
    });

    servers[1]!.fresh.value = false;
    await waitFor(async () => JSON.stringify(await answers()) === JSON.stringify(['192.0.2.10']), {
      timeoutMs: 10_000,
      intervalMs: 200,
      what: 'stale mirror leaves',
    });

    await registrar().withdraw(a);
    expect(slept).toEqual([31_000]);
    expect((await registrar().list()).map((e) => e.mirrorId)).toEqual(['b']);
    expect(await answers()).not.toContain('192.0.2.10');
    await registrar().retire(a);
    expect(slept).toEqual([31_000]);
    await registrar().retire(b);
    expect(await registrar().list()).toEqual([]);
    expect(await answers()).toEqual([]);
  });

  it('names the zone and status when the API refuses', async () => {
    const bad = createPowerDnsRegistrar({
      apiUrl: pdns.apiUrl,
      apiKey: 'wrong',
      zone: 'example.test',
      serviceName: 'repo.example.test',
      regionSubnets: {},
      clock,
    });
    await expect(bad.register(a)).rejects.toMatchObject({
      code: 'METASYNC_ERR_DNS_CALL_FAILED',
      message: expect.stringContaining('PowerDNS GET zone example.test. answered HTTP 401') as unknown,
    });
  });
});
