import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Route53Client } from '@aws-sdk/client-route-53';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Clock, DnsRegistrar, MirrorEndpoint, StepEvent } from '../src/registrar.js';
import { createRoute53Registrar } from '../src/route53/registrar.js';
import { createFileStateStore, type StateStore } from '../src/route53/state-file.js';
import { fakeClientConfig, startRoute53Fake, type Route53Fake } from './route53-fake/server.js';

const TTL_S = 60;
const MARGIN_MS = 5_000;
const m1: MirrorEndpoint = { mirrorId: 'm1', region: 'eu-west-1', address: '192.0.2.11', healthUrl: 'http://192.0.2.11:8080/health/fresh' };
const m2: MirrorEndpoint = { mirrorId: 'm2', region: 'eu-west-1', address: '192.0.2.12', healthUrl: 'http://192.0.2.12:8080/health/fresh' };
const m3: MirrorEndpoint = {
  mirrorId: 'm3',
  region: 'us-east-1',
  address: '198.51.100.13',
  healthUrl: 'https://m3.mirrors.example.net/health/fresh',
};

/** Virtual time: sleeps return at once and move the clock, so TTL waits cost nothing. */
function virtualClock(): Clock & { slept: number[] } {
  let nowMs = 1_700_000_000_000;
  const slept: number[] = [];
  return {
    slept,
    now: () => nowMs,
    sleep: (ms) => {
      slept.push(ms);
      nowMs += ms;
      return Promise.resolve();
    },
  };
}

class InjectedCrash extends Error {}

describe('route53 registrar against the REST-XML fake', () => {
  let fake: Route53Fake;
  let client: Route53Client;
  let dir: string;
  let clock: ReturnType<typeof virtualClock>;
  let state: StateStore;

  beforeEach(async () => {
    fake = await startRoute53Fake({ zones: [{ name: 'example.com' }], insyncAfterPolls: 2 });
    client = new Route53Client(fakeClientConfig(fake));
    dir = await mkdtemp(join(tmpdir(), 'metasync-r53-'));
    clock = virtualClock();
    state = createFileStateStore(join(dir, 'dns-state.json'));
  });
  afterEach(async () => {
    client.destroy();
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  const registrar = (stateStore: StateStore = state): DnsRegistrar =>
    createRoute53Registrar({
      client,
      hostedZoneId: `/hostedzone/${fake.zoneIds[0]!}`,
      serviceName: 'repo.example.com',
      ttlS: TTL_S,
      drainMarginMs: MARGIN_MS,
      state: stateStore,
      clock,
      retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 100 },
      insyncPollMs: 100,
    });
  const records = () => fake.zone(fake.zoneIds[0]!).records;
  const expectClean = (mirrors: MirrorEndpoint[]): void => {
    expect(fake.report()).toEqual({ recordsWithMissingCheck: [], unreferencedChecks: [] });
    expect(fake.healthChecks()).toHaveLength(mirrors.length);
    for (const mirror of mirrors) {
      const record = records().find((r) => r.SetIdentifier === mirror.mirrorId);
      expect(record, mirror.mirrorId).toBeDefined();
      expect(fake.tags(record!.HealthCheckId!)).toMatchObject({ 'managed-by': 'metasync', 'metasync:mirror-id': mirror.mirrorId });
    }
  };
  const crashAt = (target: number) => {
    let seen = 0;
    return (event: StepEvent): void => {
      if (seen++ === target) throw new InjectedCrash(`crash at ${event.step}/${event.phase}`);
    };
  };
  const recordEvents = async (run: (onStep: (e: StepEvent) => void) => Promise<void>): Promise<StepEvent[]> => {
    const events: StepEvent[] = [];
    await run((e) => {
      events.push(e);
    });
    return events;
  };

  it('registers a mirror: tagged string-match check on the freshness path, multivalue record with it, latency alias per region', async () => {
    await registrar().register(m1);
    const [check] = fake.healthChecks();
    expect(check?.HealthCheckConfig).toMatchObject({
      Type: 'HTTP_STR_MATCH',
      IPAddress: '192.0.2.11',
      Port: '8080',
      ResourcePath: '/health/fresh',
      SearchString: 'fresh',
    });
    expect(check?.CallerReference).toMatch(/^metasync-[0-9a-f]{40}$/);
    expect(records()).toEqual(
      expect.arrayContaining([
        {
          Name: 'eu-west-1.regions.repo.example.com.',
          Type: 'A',
          SetIdentifier: 'm1',
          MultiValueAnswer: true,
          TTL: TTL_S,
          ResourceRecords: [{ Value: '192.0.2.11' }],
          HealthCheckId: check!.Id,
        },
        {
          Name: 'repo.example.com.',
          Type: 'A',
          SetIdentifier: 'eu-west-1',
          Region: 'eu-west-1',
          AliasTarget: { HostedZoneId: fake.zoneIds[0]!, DNSName: 'eu-west-1.regions.repo.example.com.', EvaluateTargetHealth: true },
        },
      ]),
    );
    expect(fake.calls.filter((c) => c === 'GetChange').length).toBeGreaterThanOrEqual(2);
    expectClean([m1]);
    expect(await registrar().list()).toEqual([
      { mirrorId: 'm1', region: 'eu-west-1', address: '192.0.2.11', healthCheckId: check!.Id, state: 'registered' },
    ]);
  });

  it('is idempotent: registering twice keeps one check and one record', async () => {
    await registrar().register(m1);
    await registrar().register(m1);
    expectClean([m1]);
    expect(records()).toHaveLength(2);
  });

  it('keeps one latency alias per region while several mirrors share it, and drops it with the last', async () => {
    await registrar().register(m1);
    await registrar().register(m2);
    await registrar().register(m3);
    expectClean([m1, m2, m3]);
    expect(
      fake.healthChecks().find((c) => c.HealthCheckConfig.FullyQualifiedDomainName === 'm3.mirrors.example.net')?.HealthCheckConfig,
    ).toMatchObject({
      Type: 'HTTPS_STR_MATCH',
      Port: '443',
      EnableSNI: 'true',
    });
    expect(
      records()
        .filter((r) => r.Name === 'repo.example.com.')
        .map((r) => r.SetIdentifier)
        .sort(),
    ).toEqual(['eu-west-1', 'us-east-1']);
    await registrar().retire(m1);
    expect(records().filter((r) => r.Name === 'repo.example.com.')).toHaveLength(2);
    await registrar().retire(m2);
    expect(
      records()
        .filter((r) => r.Name === 'repo.example.com.')
        .map((r) => r.SetIdentifier),
    ).toEqual(['us-east-1']);
    expectClean([m3]);
  });

  it('retire deletes the record, waits INSYNC and one TTL plus margin, then deletes the check', async () => {
    await registrar().register(m1);
    const times: Record<string, number> = {};
    await registrar().retire(m1, { onStep: (e) => void (times[`${e.step}/${e.phase}`] = clock.now()) });
    expect(records()).toEqual([]);
    expect(fake.healthChecks()).toEqual([]);
    expect(times['delete-health-check/start']! - times['delete-record/done']!).toBeGreaterThanOrEqual(TTL_S * 1000 + MARGIN_MS);
    const order = fake.calls.filter((c) => ['ChangeResourceRecordSets', 'GetChange', 'DeleteHealthCheck'].includes(c));
    expect(order.lastIndexOf('GetChange')).toBeLessThan(order.indexOf('DeleteHealthCheck'));
  });

  it('withdraw takes the record out and keeps the check; a following retire deletes the check without a second TTL wait', async () => {
    await registrar().register(m1);
    await registrar().withdraw(m1);
    expect(records()).toEqual([]);
    expect(fake.healthChecks()).toHaveLength(1);
    const sleptBefore = clock.slept.reduce((a, b) => a + b, 0);
    expect(sleptBefore).toBeGreaterThanOrEqual(TTL_S * 1000 + MARGIN_MS);
    await registrar().retire(m1);
    expect(fake.healthChecks()).toEqual([]);
    expect(clock.slept.reduce((a, b) => a + b, 0) - sleptBefore).toBeLessThan(1_000);
  });

  it('finishes a register after a crash at any step, leaving one owned check referenced by the record', async () => {
    const steps = await recordEvents((onStep) => registrar().register(m1, { onStep }));
    expect(steps.length).toBeGreaterThanOrEqual(8);
    await fake.close();
    for (let k = 0; k < steps.length; k++) {
      fake = await startRoute53Fake({ zones: [{ name: 'example.com' }], insyncAfterPolls: 2 });
      client = new Route53Client(fakeClientConfig(fake));
      state = createFileStateStore(join(dir, `state-register-${k}.json`));
      await expect(registrar().register(m1, { onStep: crashAt(k) }), `crash at event ${k}`).rejects.toBeInstanceOf(InjectedCrash);
      expect(fake.report().recordsWithMissingCheck).toEqual([]);
      await registrar().register(m1);
      expectClean([m1]);
      if (k < steps.length - 1) await fake.close();
    }
  });

  it('finishes a retire after a crash at any step, never leaving a record on a deleted check, and ends clean', async () => {
    await registrar().register(m1);
    const steps = await recordEvents((onStep) => registrar().retire(m1, { onStep }));
    for (let k = 0; k < steps.length; k++) {
      await registrar().register(m1);
      await registrar().register(m2);
      await expect(registrar().retire(m1, { onStep: crashAt(k) }), `crash at event ${k}`).rejects.toBeInstanceOf(InjectedCrash);
      expect(fake.report().recordsWithMissingCheck).toEqual([]);
      await registrar().retire(m1);
      expectClean([m2]);
      await registrar().retire(m2);
      expect(records()).toEqual([]);
      expect(fake.healthChecks()).toEqual([]);
    }
  });

  it('retire with the local state lost still finds and deletes its tagged check, and a later register gets a fresh CallerReference', async () => {
    await registrar().register(m1);
    const lost = createFileStateStore(join(dir, 'other-state.json'));
    await registrar(lost).retire(m1);
    expect(fake.healthChecks()).toEqual([]);
    const fresh = createFileStateStore(join(dir, 'third-state.json'));
    await registrar(fresh).register(m1);
    expect(fake.calls).toContain('CreateHealthCheck');
    expectClean([m1]);
  });

  it('moves to a new check when the health URL changes and deletes the old one only after the record left it', async () => {
    await registrar().register(m1);
    const [old] = fake.healthChecks();
    await registrar().register({ ...m1, healthUrl: 'http://192.0.2.11:9090/health/fresh' });
    expectClean([m1]);
    expect(fake.healthChecks()[0]?.Id).not.toBe(old?.Id);
    expect(fake.healthChecks()[0]?.HealthCheckConfig.Port).toBe('9090');
  });

  it('moves a mirror that changed region or address family: the old record (and an alias left empty) go in the same batch', async () => {
    await registrar().register(m1);
    await registrar().register(m2);
    await registrar().register({ ...m1, region: 'us-east-1' });
    expect(
      records()
        .filter((r) => r.SetIdentifier === 'm1')
        .map((r) => r.Name),
    ).toEqual(['us-east-1.regions.repo.example.com.']);
    expect(
      records()
        .filter((r) => r.Name === 'repo.example.com.')
        .map((r) => r.SetIdentifier)
        .sort(),
    ).toEqual(['eu-west-1', 'us-east-1']);
    await registrar().register({ ...m2, address: '2001:db8::12' });
    expect(
      records()
        .filter((r) => r.Name === 'repo.example.com.')
        .map((r) => `${r.SetIdentifier} ${r.Type}`)
        .sort(),
    ).toEqual(['eu-west-1 AAAA', 'us-east-1 A']);
    expectClean([m1, m2]);
  });

  it('retries Throttling and PriorRequestNotComplete with backoff and succeeds', async () => {
    fake.inject({ action: 'CreateHealthCheck', code: 'Throttling', times: 2 });
    fake.inject({ action: 'ChangeResourceRecordSets', code: 'PriorRequestNotComplete', times: 2 });
    fake.inject({ action: 'GetChange', code: 'Throttling', times: 1 });
    await registrar().register(m1);
    expectClean([m1]);
    expect(fake.calls.filter((c) => c.includes('!')).length).toBe(5);
    expect(clock.slept.filter((ms) => ms < 100).length).toBeGreaterThanOrEqual(5);
  });

  it('gives up after the retry budget with METASYNC_ERR_DNS_CALL_FAILED naming the call', async () => {
    fake.inject({ action: 'CreateHealthCheck', code: 'Throttling', times: 10 });
    await expect(registrar().register(m1)).rejects.toMatchObject({
      code: 'METASYNC_ERR_DNS_CALL_FAILED',
      message: expect.stringMatching(
        /CreateHealthCheck metasync-[0-9a-f]+ for mirror m1 still failing after 4 attempts: Throttling/,
      ) as unknown,
    });
  });

  it('surfaces InvalidChangeBatch on register as METASYNC_ERR_DNS_CALL_FAILED naming the record, and a rerun finishes', async () => {
    fake.inject({ action: 'ChangeResourceRecordSets', code: 'InvalidChangeBatch', message: 'injected refusal' });
    await expect(registrar().register(m1)).rejects.toMatchObject({
      code: 'METASYNC_ERR_DNS_CALL_FAILED',
      message: expect.stringContaining(
        'UPSERT eu-west-1.regions.repo.example.com. A m1 failed: InvalidChangeBatch: injected refusal',
      ) as unknown,
    });
    await registrar().register(m1);
    expectClean([m1]);
  });
});
