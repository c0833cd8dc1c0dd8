import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRoute53Fake, type Route53Fake } from '../packages/dns/test/route53-fake/server.js';
import { route53FakeEnv, runCli, type CliResult } from './helpers/cli.js';
import { startCluster, type Cluster } from './helpers/cluster.js';
import type { Daemon } from './helpers/daemon.js';

describe('metasync mirror retire and exit codes (real primary and mirror, Route53 fake)', { timeout: 90_000 }, () => {
  let cluster: Cluster;
  let fake: Route53Fake;
  let dir: string;
  let mirror: Daemon;
  let credential: string | undefined;

  const cli = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> =>
    runCli(args, {
      env: {
        METASYNC_PRIMARY: cluster.primary.url,
        // mirror retire revokes the mirror's credential last: it needs an admin token of the primary.
        METASYNC_PRIMARY_TOKEN: cluster.token,
        ...route53FakeEnv(fake, { stateFile: join(dir, 'dns-state.json'), ttlS: 1, drainMarginMs: 200 }),
        ...env,
      },
      timeoutMs: 60_000,
    });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'metasync-cli-retire-'));
    fake = await startRoute53Fake({ zones: [{ name: 'example.com' }], insyncAfterPolls: 1 });
    cluster = await startCluster();
    await cluster.publish('acme/widget', '1.0.0');
    ({ daemon: mirror, credential } = await cluster.startMirror({ mirrorId: 'old', region: 'eu-west-1' }));
  });
  afterAll(async () => {
    await cluster?.stop();
    await fake?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('documents its exit codes in --help and exits 2 on a usage error', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit codes:[\s\S]*3 {2}a DNS provider call failed/);
    expect(help.stdout).toContain('METASYNC_ROUTE53_ZONE_ID');
    const usage = await cli(['mirror', 'up', 'nobody']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('METASYNC_ERR_CLI_USAGE: mirror nobody is not in the config file');
    const noPrimary = await cli(['mirrors', 'list'], { METASYNC_PRIMARY: '' });
    expect(noPrimary.code).toBe(2);
    expect(noPrimary.stderr).toContain('METASYNC_ERR_CLI_USAGE: no primary URL: pass --primary or set METASYNC_PRIMARY');
    expect(noPrimary.stdout).toBe('');
  });

  it('exits 3 naming the call when Route53 refuses, and 1 from status while the primary is down', async () => {
    fake.inject({
      action: 'CreateHealthCheck',
      code: 'AccessDenied',
      status: 403,
      message: 'User is not authorized to perform route53:CreateHealthCheck',
    });
    const refused = await cli(['mirror', 'up', 'old', '--url', mirror.url, '--region', 'eu-west-1', '--poll-ms', '100']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(
      /METASYNC_ERR_DNS_CALL_FAILED: CreateHealthCheck metasync-[0-9a-f]+ for mirror old failed: AccessDenied: User is not authorized/,
    );
    const down = await cli(['status'], { METASYNC_PRIMARY: 'http://127.0.0.1:9' });
    expect(down.code).toBe(1);
    expect(down.stdout).toContain('primary http://127.0.0.1:9: DOWN');
  });

  it('retires: record out and INSYNC, one TTL, then the stop command, and only then the health check goes', async () => {
    const up = await cli(['mirror', 'up', 'old', '--url', mirror.url, '--region', 'eu-west-1', '--poll-ms', '100']);
    expect(up.code, up.stderr).toBe(0);
    const listed = await cli(['mirrors', 'list']);
    expect(listed.stdout).toMatch(/old .*eu-west-1 .*fresh .*registered/);
    const zone = fake.zoneIds[0]!;
    const stopCommand = [
      `curl -sf ${fake.url}/2013-04-01/hostedzone/${zone}/rrset > ${join(dir, 'records-at-stop.xml')}`,
      `curl -sf ${fake.url}/2013-04-01/healthcheck > ${join(dir, 'checks-at-stop.xml')}`,
      `kill -TERM ${mirror.child.pid}`,
    ].join(' && ');
    const retireArgs = [
      'mirror',
      'retire',
      'old',
      '--url',
      mirror.url,
      '--region',
      'eu-west-1',
      '--stop-command',
      stopCommand,
      '--timeout-ms',
      '20000',
    ];
    // 'old' is the only mirror in DNS: retiring it would leave the name with no fresh mirror, so it is refused (exit 7) and nothing changes.
    const refused = await cli(retireArgs);
    expect(refused.code, refused.stderr).toBe(7);
    expect(refused.stderr).toContain(
      'METASYNC_ERR_CLI_NO_FRESH_MIRROR: mirror retire old refused: it would leave the service name with no fresh mirror',
    );
    expect(refused.stderr).not.toMatch(/\n\s+at /);
    expect(fake.zone(zone).records.map((r) => r.SetIdentifier)).toContain('old');
    expect(mirror.child.exitCode).toBeNull();
    const retired = await cli([...retireArgs, '--force']);
    expect(retired.code, retired.stderr).toBe(0);
    expect(retired.stderr).toContain(
      'warning: mirror retire old would leave the service name with no fresh mirror in DNS; going on because of --force',
    );
    // One TTL (1 s) plus the 200 ms margin, counted from the DELETE (INSYNC polling already used some of it).
    const ttlWaitMs = Number(/dns: wait-ttl \((\d+) ms\)/.exec(retired.stderr)?.[1]);
    expect(ttlWaitMs).toBeGreaterThan(0);
    expect(ttlWaitMs).toBeLessThanOrEqual(1200);
    expect(retired.stderr.indexOf('dns: wait-ttl')).toBeLessThan(retired.stderr.indexOf('stopping old'));
    expect(retired.stderr.indexOf('stopping old')).toBeLessThan(retired.stderr.indexOf('dns: delete-health-check'));
    const recordsAtStop = await readFile(join(dir, 'records-at-stop.xml'), 'utf8');
    const checksAtStop = await readFile(join(dir, 'checks-at-stop.xml'), 'utf8');
    expect(recordsAtStop).toContain('<ListResourceRecordSetsResponse');
    expect(recordsAtStop).not.toContain('<SetIdentifier>old</SetIdentifier>');
    expect(checksAtStop).toMatch(/<CallerReference>metasync-/);
    expect(await mirror.exited).toMatchObject({ code: 0 });
    expect(fake.zone(zone).records).toEqual([]);
    expect(fake.healthChecks()).toEqual([]);
    const order = fake.calls.filter((call) => ['ChangeResourceRecordSets', 'DeleteHealthCheck'].includes(call));
    expect(order.slice(-2)).toEqual(['ChangeResourceRecordSets', 'DeleteHealthCheck']);
    // Last, the credential: revoked, so the retired mirror is off the primary's list and its acks are refused.
    expect(retired.stderr.indexOf('dns: delete-health-check')).toBeLessThan(retired.stderr.indexOf('credential of old revoked'));
    const mirrors = (await (await fetch(`${cluster.primary.url}/sync/v1/mirrors`)).json()) as { mirrors: { mirrorId: string }[] };
    expect(mirrors.mirrors.map((m) => m.mirrorId)).not.toContain('old');
    const forged = await fetch(`${cluster.primary.url}/sync/v1/ack`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${credential}` },
      body: JSON.stringify({ mirrorId: 'old', region: 'eu-west-1', url: mirror.url, seq: 1, appliedAt: Date.now() }),
    });
    expect(forged.status).toBe(403);
  }, 90_000);
});
