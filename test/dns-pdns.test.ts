import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPowerDnsRegistrar } from '@metasync/dns';
import { startCluster, type Cluster } from './helpers/cluster.js';
import { runCli, type CliResult } from './helpers/cli.js';
import type { Daemon } from './helpers/daemon.js';
import { startGateProxy, type GateProxy } from './helpers/gate-proxy.js';
import { startPdns, type Pdns } from './helpers/pdns.js';
import { waitFor } from './helpers/wait-for.js';

const EU = '10.1.2.0/24';
const US = '10.2.2.0/24';
const SERVICE = 'repo.example.test';
/** Answers carry TEST-NET addresses; pdns health-checks each mirror's real loopback freshness URL. */
const ADDRESS = { m1: '192.0.2.1', m2: '192.0.2.2', m3: '192.0.2.3' } as const;
const REGION_SUBNETS = { eu: ['10.1.0.0/16'], us: ['10.2.0.0/16'] };

/**
 * DNS end to end: real PowerDNS (LUA ifurlextup + netmask on ECS), a real
 * primary and three real mirrors in two regions, queried with dig +subnet.
 */
describe('DNS with PowerDNS, real mirrors, dig +subnet', () => {
  let pdns: Pdns;
  let cluster: Cluster;
  let gate: GateProxy;
  let dir: string;
  const mirrors: Record<string, Daemon> = {};

  const cli = (args: string[]): Promise<CliResult> =>
    runCli(['--config', join(dir, 'metasync.json'), ...args], {
      // mirror retire revokes the mirror's credential last, with an admin token of the primary.
      env: { METASYNC_PDNS_API_KEY: pdns.apiKey, METASYNC_PRIMARY_TOKEN: cluster.token },
    });
  const answers = (subnet: string): Promise<string[]> => pdns.dig(SERVICE, { subnet });
  const expectAnswers = async (subnet: string, expected: string[], what: string): Promise<void> => {
    let last: string[] = [];
    await waitFor(
      async () => {
        last = await answers(subnet);
        return JSON.stringify(last) === JSON.stringify([...expected].sort());
      },
      { timeoutMs: 15_000, intervalMs: 200, what: `${what}: ${subnet} -> ${expected.join(',')} (last ${last.join(',')})` },
    );
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'metasync-dns-e2e-'));
    pdns = await startPdns({ checkIntervalS: 1 });
    await pdns.createZone('example.test');
    cluster = await startCluster();
    await cluster.publish('acme/widget', '1.0.0');
    gate = await startGateProxy(cluster.primary.url);
    const fastLag = ['--max-lag-ms', '1000', '--poll-interval-ms', '200'];
    mirrors.m1 = (await cluster.startMirror({ mirrorId: 'm1', region: 'eu', args: fastLag })).daemon;
    mirrors.m2 = (await cluster.startMirror({ mirrorId: 'm2', region: 'eu', primaryUrl: gate.url, args: fastLag })).daemon;
    mirrors.m3 = (await cluster.startMirror({ mirrorId: 'm3', region: 'us', args: fastLag })).daemon;
    const config = {
      primary: cluster.primary.url,
      dns: {
        provider: 'powerdns',
        ttlS: 1,
        drainMarginMs: 500,
        powerdns: { apiUrl: pdns.apiUrl, zone: 'example.test', serviceName: SERVICE, regionSubnets: REGION_SUBNETS },
      },
      mirrors: {
        m1: {
          url: mirrors.m1.url,
          region: 'eu',
          address: ADDRESS.m1,
          // What an eu client resolves at the moment the mirror is told to stop, then the stop itself.
          stopCommand: `dig @127.0.0.1 -p ${pdns.dnsPort} +short +subnet=${EU} ${SERVICE} A > ${join(dir, 'answers-at-stop.txt')} && kill -TERM ${mirrors.m1.child.pid}`,
        },
        m2: { url: mirrors.m2.url, region: 'eu', address: ADDRESS.m2 },
        m3: { url: mirrors.m3.url, region: 'us', address: ADDRESS.m3 },
      },
    };
    await writeFile(join(dir, 'metasync.json'), JSON.stringify(config, null, 2));
  });
  afterAll(async () => {
    await cluster?.stop();
    await gate?.close();
    await pdns?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('registers with mirror up; clients get their region mirrors; a stopped or stale mirror leaves; a retired one leaves before it stops', async () => {
    // m1 through the CLI (waits for fresh, then registers); m2 and m3 through the same registrar in-process.
    const up = await cli(['mirror', 'up', 'm1', '--poll-ms', '100', '--timeout-ms', '30000']);
    expect(up.code, up.stderr).toBe(0);
    const registrar = createPowerDnsRegistrar({
      apiUrl: pdns.apiUrl,
      apiKey: pdns.apiKey,
      zone: 'example.test',
      serviceName: SERVICE,
      regionSubnets: REGION_SUBNETS,
      ttlS: 1,
    });
    for (const id of ['m2', 'm3'] as const) {
      await registrar.register({
        mirrorId: id,
        region: id === 'm3' ? 'us' : 'eu',
        address: ADDRESS[id],
        healthUrl: `${mirrors[id]!.url}/health/fresh`,
      });
    }
    const listed = await cli(['mirrors', 'list', '--json']);
    const report = JSON.parse(listed.stdout) as { rows: { mirrorId: string; health: string; dns: string; region: string }[] };
    expect(report.rows.map((r) => [r.mirrorId, r.region, r.health, r.dns])).toEqual([
      ['m1', 'eu', 'fresh', 'registered'],
      ['m2', 'eu', 'fresh', 'registered'],
      ['m3', 'us', 'fresh', 'registered'],
    ]);

    await expectAnswers(EU, [ADDRESS.m1, ADDRESS.m2], 'eu clients get both eu mirrors');
    await expectAnswers(US, [ADDRESS.m3], 'us clients get the us mirror');

    // Stop the only us mirror: it leaves; us clients fall back to the healthy eu mirrors.
    await mirrors.m3!.stop();
    await expectAnswers(US, [ADDRESS.m1, ADDRESS.m2], 'stopped us mirror leaves the answers');

    // Cut m2 off from the primary: it goes stale (503 on /health/fresh) while m1 stays fresh.
    gate.shut();
    await cluster.publish('acme/widget', '1.1.0');
    await waitFor(async () => (await fetch(`${mirrors.m2!.url}/health/fresh`)).status === 503, { timeoutMs: 10_000, what: 'm2 stale' });
    expect((await fetch(`${mirrors.m1!.url}/health/fresh`)).status).toBe(200);
    await expectAnswers(EU, [ADDRESS.m1], 'stale eu mirror leaves the answers');

    // m1 is the last fresh mirror (m2 stale, m3 stopped): with no healthy answer, ifurlextup would hand out
    // every address, dead ones included, so retire refuses without --force and changes nothing.
    const refused = await cli(['mirror', 'retire', 'm1', '--timeout-ms', '30000']);
    expect(refused.code, refused.stderr).toBe(7);
    expect(refused.stderr).toMatch(
      /METASYNC_ERR_CLI_NO_FRESH_MIRROR: mirror retire m1 refused: it would leave the service name with no fresh mirror/,
    );
    expect(refused.stderr).toMatch(/m2 \(eu, stale/);
    expect(refused.stderr).not.toMatch(/\n\s+at /);
    await expectAnswers(EU, [ADDRESS.m1], 'a refused retire leaves m1 in DNS');
    expect(mirrors.m1!.child.exitCode).toBeNull();

    // Retire m1 with the CLI, forced: out of DNS before its stop command runs.
    const retired = await cli(['mirror', 'retire', 'm1', '--force', '--timeout-ms', '30000']);
    expect(retired.code, retired.stderr).toBe(0);
    expect(retired.stderr.indexOf('m1 is out of DNS')).toBeLessThan(retired.stderr.indexOf('stopping m1'));
    const atStop = (await readFile(join(dir, 'answers-at-stop.txt'), 'utf8')).split('\n').filter((line) => line !== '');
    expect(atStop).not.toContain(ADDRESS.m1);
    await mirrors.m1!.exited;
    expect(await answers(EU)).not.toContain(ADDRESS.m1);
    expect((await registrar.list()).map((e) => e.mirrorId)).toEqual(['m2', 'm3']);
  }, 180_000);
});
