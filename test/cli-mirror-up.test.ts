import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRoute53Fake, type Route53Fake } from '../packages/dns/test/route53-fake/server.js';
import { route53FakeEnv } from './helpers/cli.js';
import { startCluster, type Cluster } from './helpers/cluster.js';
import { BINS } from './helpers/daemon.js';
import { startGateProxy, type GateProxy } from './helpers/gate-proxy.js';
import { waitFor } from './helpers/wait-for.js';

describe('metasync mirror up (real primary and mirror, Route53 fake)', () => {
  let cluster: Cluster;
  let gate: GateProxy;
  let fake: Route53Fake;
  let stateDir: string;

  beforeAll(async () => {
    cluster = await startCluster();
    gate = await startGateProxy(cluster.primary.url);
    fake = await startRoute53Fake({ zones: [{ name: 'example.com' }], insyncAfterPolls: 1 });
    stateDir = await mkdtemp(join(tmpdir(), 'metasync-cli-up-'));
  });
  afterAll(async () => {
    await cluster?.stop();
    await gate?.close();
    await fake?.close();
    if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
  });

  it('waits while the mirror lags and registers it in DNS only once it has caught up and is fresh', async () => {
    await cluster.publish('acme/widget', '1.0.0');
    const { daemon: mirror } = await cluster.startMirror({
      mirrorId: 'lagger',
      region: 'eu-west-1',
      primaryUrl: gate.url,
      args: ['--max-lag-ms', '800', '--poll-interval-ms', '200'],
    });
    const fresh = async (): Promise<boolean> => (await fetch(`${mirror.url}/health/fresh`)).status === 200;
    await waitFor(fresh, { timeoutMs: 15_000, what: 'mirror fresh at first' });

    gate.shut();
    await cluster.publish('acme/widget', '1.1.0');
    await cluster.publish('acme/gadget', '2.0.0');
    const head = await cluster.headSeq();
    await waitFor(async () => !(await fresh()), { timeoutMs: 10_000, what: 'mirror stale behind the shut gate' });

    const child = spawn(
      process.execPath,
      [BINS.cli, 'mirror', 'up', 'lagger', '--url', mirror.url, '--region', 'eu-west-1', '--poll-ms', '150', '--timeout-ms', '60000'],
      {
        env: {
          ...process.env,
          METASYNC_PRIMARY: cluster.primary.url,
          ...route53FakeEnv(fake, { stateFile: join(stateDir, 'dns-state.json') }),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      // Several probes of a stale, lagging mirror: nothing may reach DNS meanwhile.
      await waitFor(() => (stderr.match(/health stale/g) ?? []).length >= 3, {
        timeoutMs: 15_000,
        what: `three stale probes; stderr: ${stderr}`,
      });
      expect(fake.calls).toEqual([]);
      expect(child.exitCode).toBeNull();

      gate.open();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`mirror up did not finish within 30 s; stderr: ${stderr}`)), 30_000);
      });
      const code = await Promise.race([exited, timeout]).finally(() => clearTimeout(timer));
      expect(code, stderr).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    expect(stdout).toContain('registered lagger (127.0.0.1, region eu-west-1) in route53');
    expect(stderr).toMatch(new RegExp(`seq ${head}/${head}, health fresh`));
    expect(stderr.indexOf(`seq ${head}/${head}, health fresh`)).toBeLessThan(stderr.indexOf('dns: create-health-check'));
    const record = fake.zone(fake.zoneIds[0]!).records.find((r) => r.SetIdentifier === 'lagger');
    expect(record).toMatchObject({ Name: 'eu-west-1.regions.repo.example.com.', ResourceRecords: [{ Value: '127.0.0.1' }] });
    expect(fake.healthChecks()[0]?.HealthCheckConfig).toMatchObject({
      ResourcePath: '/health/fresh',
      SearchString: 'fresh',
      Port: new URL(mirror.url).port,
    });
    expect(fake.report()).toEqual({ recordsWithMissingCheck: [], unreferencedChecks: [] });
  }, 90_000);
});
