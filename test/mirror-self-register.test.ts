import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRoute53Fake, type Route53Fake } from '../packages/dns/test/route53-fake/server.js';
import { route53FakeEnv } from './helpers/cli.js';
import { startCluster, type Cluster } from './helpers/cluster.js';
import { startDaemon, type Daemon } from './helpers/daemon.js';
import { startGateProxy, type GateProxy } from './helpers/gate-proxy.js';
import { waitFor } from './helpers/wait-for.js';

const ADMIN_TOKEN = 'self-register-admin-token';
const MIRROR_ID = 'self1';

/**
 * A real primary and a real mirror started with --dns-self-register against the
 * in-repo Route53 fake (real SDK over HTTP). The mirror reaches the primary
 * through a gate, so the test decides when it can become fresh.
 */
describe('mirror self-registration in DNS (real primary and mirror, Route53 fake)', { timeout: 60_000 }, () => {
  let cluster: Cluster;
  let fake: Route53Fake;
  let gate: GateProxy;
  let mirror: Daemon;
  let second: Daemon | undefined;

  const myRecords = (mirrorId = MIRROR_ID) => fake.zone(fake.zoneIds[0]!).records.filter((r) => r.SetIdentifier === mirrorId);
  const health = async (): Promise<{ status: number; body: string }> => {
    const response = await fetch(`${mirror.url}/health/fresh`);
    return { status: response.status, body: await response.text() };
  };

  beforeAll(async () => {
    fake = await startRoute53Fake({ zones: [{ name: 'example.com' }], insyncAfterPolls: 1 });
    cluster = await startCluster();
    await cluster.publish('acme/widget', '1.0.0');
    gate = await startGateProxy(cluster.primary.url);
    gate.shut();
    mirror = await startSelfRegistering(MIRROR_ID, gate.url);
  });
  afterAll(async () => {
    await mirror?.stop(10_000);
    await second?.stop(10_000);
    await gate?.close();
    await cluster?.stop();
    await fake?.close();
  });

  async function startSelfRegistering(mirrorId: string, primaryUrl: string): Promise<Daemon> {
    const credential = await cluster.enroll(mirrorId);
    const keyArg = await cluster.keyArg();
    return startDaemon({
      bin: 'mirror',
      args: [
        '--primary',
        primaryUrl,
        '--data',
        join(cluster.root, `mirror-${mirrorId}`),
        '--listen',
        '127.0.0.1:0',
        '--region',
        'eu-west-1',
        '--mirror-id',
        mirrorId,
        '--primary-key',
        keyArg,
        '--dns-self-register',
      ],
      env: {
        METASYNC_MIRROR_CREDENTIAL: credential,
        METASYNC_ADMIN_TOKEN: ADMIN_TOKEN,
        ...route53FakeEnv(fake, { ttlS: 1, drainMarginMs: 200 }),
      },
    });
  }

  it('registers only once fresh, leaves DNS on drain while still serving, and leaves nothing behind at SIGTERM', async () => {
    // Cut off from the primary: not fresh, so nothing may enter DNS (the mirror polls freshness every 500 ms).
    const until = Date.now() + 1_500;
    for (let round = 0; round < 100 && Date.now() < until; round++) {
      expect((await health()).status).toBe(503);
      expect(myRecords()).toEqual([]);
      expect(fake.healthChecks()).toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    gate.open();
    await waitFor(async () => (await health()).status === 200, { timeoutMs: 10_000, what: 'the mirror to be fresh' });
    const [record] = await waitFor(() => (myRecords().length === 1 ? myRecords() : undefined), {
      timeoutMs: 15_000,
      what: 'the self-registered record',
    });
    expect(record).toMatchObject({ Type: 'A', ResourceRecords: [{ Value: '127.0.0.1' }] });
    const [check] = fake.healthChecks();
    expect(record!.HealthCheckId).toBe(check!.Id);
    expect(JSON.stringify(check!.HealthCheckConfig)).toContain(String(new URL(mirror.url).port));
    expect(fake.report()).toEqual({ recordsWithMissingCheck: [], unreferencedChecks: [] });
    const logs = mirror.logs.map((entry) => entry.msg);
    expect(logs.indexOf('dns: registering')).toBeGreaterThan(-1);

    // Drain: a wrong token changes nothing; the right one answers once the record is out.
    const refused = await fetch(`${mirror.url}/admin/drain`, { method: 'POST', headers: { authorization: 'Bearer nope' } });
    expect(refused.status).toBe(401);
    expect(myRecords()).toHaveLength(1);
    const drained = await fetch(`${mirror.url}/admin/drain`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(drained.status).toBe(200);
    expect(await drained.json()).toMatchObject({ draining: true, dns: 'withdrawn', mirrorId: MIRROR_ID });
    expect(myRecords()).toEqual([]);
    expect(fake.healthChecks()).toHaveLength(1);
    expect(await health()).toEqual({ status: 503, body: 'draining\n' });
    const served = await fetch(`${mirror.url}/p2/acme/widget.json`);
    expect(served.status).toBe(200);
    expect(await served.text()).toContain('"1.0.0"');

    // SIGTERM: the health check goes last, and the fake is clean.
    await mirror.stop(10_000);
    expect(await mirror.exited).toEqual({ code: 0, signal: null });
    expect(fake.zone(fake.zoneIds[0]!).records).toEqual([]);
    expect(fake.healthChecks()).toEqual([]);
    expect(fake.report()).toEqual({ recordsWithMissingCheck: [], unreferencedChecks: [] });
  });

  it('at SIGTERM withdraws its record while still answering, then stops and deletes its health check', async () => {
    second = await startSelfRegistering('self2', cluster.primary.url);
    const url = second.url;
    await waitFor(() => myRecords('self2').length === 1, { timeoutMs: 15_000, what: 'the second mirror to register' });
    expect(fake.healthChecks()).toHaveLength(1);
    second.child.kill('SIGTERM');
    // The record leaves first; the listener stays open for the TTL wait that follows.
    await waitFor(() => myRecords('self2').length === 0, { timeoutMs: 10_000, what: 'the record to leave at SIGTERM' });
    expect(second.child.exitCode).toBeNull();
    expect(fake.healthChecks()).toHaveLength(1);
    const during = await fetch(`${url}/health/fresh`);
    expect(await during.text()).toBe('draining\n');
    expect(await second.exited).toEqual({ code: 0, signal: null });
    expect(fake.zone(fake.zoneIds[0]!).records).toEqual([]);
    expect(fake.healthChecks()).toEqual([]);
    const order = fake.calls.filter((call) => ['ChangeResourceRecordSets', 'DeleteHealthCheck'].includes(call));
    expect(order.slice(-2)).toEqual(['ChangeResourceRecordSets', 'DeleteHealthCheck']);
  });
});
