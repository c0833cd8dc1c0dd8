import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from './helpers/cli.js';
import { startCluster, type Cluster } from './helpers/cluster.js';
import { isAlive, killLaunched, launchedMirrors } from './helpers/launched.js';
import { startPdns, type Pdns } from './helpers/pdns.js';
import { waitFor } from './helpers/wait-for.js';

const EU = '10.1.2.0/24';
const SERVICE = 'repo.example.test';
/** The launcher hands these out, one per mirror; pdns health-checks each mirror's real loopback URL. */
const POOL = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];

/**
 * `mirror up --launch local` and `mirror retire` end to end: real primary,
 * mirror processes started by the CLI's local launcher, real PowerDNS, dig.
 */
describe('local launcher with PowerDNS: up, idempotent rerun, a SIGKILLed mirror, retire refusals and --force', () => {
  let pdns: Pdns;
  let cluster: Cluster;
  let dir: string;
  let launchDir: string;

  const cli = (args: string[]): Promise<CliResult> =>
    runCli(['--config', join(dir, 'metasync.json'), ...args], {
      // The launcher hands the admin token to the mirrors it starts, so retire drains them through POST /admin/drain.
      env: { METASYNC_PDNS_API_KEY: pdns.apiKey, METASYNC_PRIMARY_TOKEN: cluster.token, METASYNC_ADMIN_TOKEN: 'launch-admin-token' },
      timeoutMs: 90_000,
    });
  const expectAnswers = async (expected: string[], what: string): Promise<void> => {
    let last: string[] = [];
    await waitFor(
      async () => {
        last = await pdns.dig(SERVICE, { subnet: EU });
        return JSON.stringify(last) === JSON.stringify([...expected].sort());
      },
      { timeoutMs: 15_000, intervalMs: 200, what: `${what}: ${expected.join(',')} (last ${last.join(',')})` },
    );
  };
  const record = (id: string) => launchedMirrors(launchDir).find((r) => r.mirrorId === id);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'metasync-launch-e2e-'));
    launchDir = join(dir, 'launch');
    pdns = await startPdns({ checkIntervalS: 1 });
    await pdns.createZone('example.test');
    cluster = await startCluster();
    await cluster.publish('acme/widget', '1.0.0');
    const config = {
      primary: cluster.primary.url,
      dns: {
        provider: 'powerdns',
        ttlS: 1,
        drainMarginMs: 300,
        powerdns: { apiUrl: pdns.apiUrl, zone: 'example.test', serviceName: SERVICE, regionSubnets: { eu: ['10.1.0.0/16'] } },
      },
      launch: { local: { dir: launchDir, addresses: POOL, mirrorArgs: ['--max-lag-ms', '1000', '--poll-interval-ms', '200'] } },
    };
    await writeFile(join(dir, 'metasync.json'), JSON.stringify(config, null, 2));
  });
  afterAll(async () => {
    if (launchDir !== undefined) killLaunched(launchDir);
    await cluster?.stop();
    await pdns?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('launches, registers, refuses to retire the last fresh mirror, retires the dead one, and destroys with --force', async () => {
    for (const id of ['m1', 'm2']) {
      const up = await cli(['mirror', 'up', id, '--launch', 'local', '--region', 'eu', '--poll-ms', '200', '--timeout-ms', '60000']);
      expect(up.code, up.stderr).toBe(0);
      expect(up.stderr).toMatch(new RegExp(`launched ${id}: pid \\d+, release 0\\.1\\.0`));
      expect(up.stdout).toContain(`registered ${id} (`);
    }
    const m1 = record('m1')!;
    const m2 = record('m2')!;
    expect([m1.address, m2.address]).toEqual([POOL[0], POOL[1]]);
    // The pid file names the mirror process itself, whose command line carries its id (what destroy checks).
    expect(readFileSync(`/proc/${m1.pid}/cmdline`, 'utf8').split('\0')).toEqual(expect.arrayContaining(['--mirror-id', 'm1']));
    await expectAnswers([POOL[0]!, POOL[1]!], 'both launched mirrors answer');
    const listed = await cli(['mirrors', 'list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const rows = (JSON.parse(listed.stdout) as { rows: { mirrorId: string; health: string; dns: string; endpoint: string }[] }).rows;
    expect(rows.map((r) => [r.mirrorId, r.health, r.dns, r.endpoint])).toEqual([
      ['m1', 'fresh', 'registered', m1.url],
      ['m2', 'fresh', 'registered', m2.url],
    ]);

    // A rerun finds the running server: same pid, no second process, no new credential.
    const again = await cli(['mirror', 'up', 'm1', '--launch', 'local', '--region', 'eu', '--poll-ms', '200']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain(`m1 already runs (local ${m1.pid}`);
    expect(again.stderr).not.toContain('enrolled');
    expect(record('m1')!.pid).toBe(m1.pid);

    // m2 crashes. pdns's health check drops it from the answers.
    process.kill(m2.pid!, 'SIGKILL');
    await expectAnswers([POOL[0]!], 'the SIGKILLed mirror leaves the answers');

    // Retiring m1 now would leave every subnet with only the dead m2's address: refused, nothing changes.
    const refused = await cli(['mirror', 'retire', 'm1', '--timeout-ms', '30000']);
    expect(refused.code, refused.stderr).toBe(7);
    expect(refused.stderr).toContain(
      'METASYNC_ERR_CLI_NO_FRESH_MIRROR: mirror retire m1 refused: it would leave the service name with no fresh mirror',
    );
    expect(refused.stderr).toContain('m2 (eu, down');
    expect(refused.stderr).not.toMatch(/\n\s+at /);
    expect(isAlive(m1.pid)).toBe(true);
    await expectAnswers([POOL[0]!], 'a refused retire leaves DNS as it was');

    // The dead one may go: m1 stays fresh in its region. Its launcher record and directory go with it.
    const dead = await cli(['mirror', 'retire', 'm2', '--timeout-ms', '30000']);
    expect(dead.code, dead.stderr).toBe(0);
    expect(dead.stderr).toContain('m2 does not answer: nothing to drain');
    expect(dead.stderr).toContain('m2 destroyed');
    expect(existsSync(join(launchDir, 'mirrors', 'm2'))).toBe(false);
    await expectAnswers([POOL[0]!], 'only m1 after retiring m2');

    // --force: the operator empties the name on purpose; the process is stopped and its state removed.
    const forced = await cli(['mirror', 'retire', 'm1', '--force', '--timeout-ms', '30000']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toContain(
      'warning: mirror retire m1 would leave the service name with no fresh mirror in DNS; going on because of --force',
    );
    expect(forced.stderr.indexOf('m1 is out of DNS')).toBeLessThan(forced.stderr.indexOf('m1 is draining: {"draining":true'));
    expect(forced.stderr.indexOf('m1 is draining')).toBeLessThan(forced.stderr.indexOf(`SIGTERM to pid ${m1.pid}`));
    await waitFor(async () => !isAlive(m1.pid), { timeoutMs: 10_000, what: 'm1 process gone' });
    expect(launchedMirrors(launchDir)).toEqual([]);
    await expectAnswers([], 'no answers once every mirror is retired');
    const empty = await cli(['mirrors', 'list', '--json']);
    expect((JSON.parse(empty.stdout) as { rows: unknown[] }).rows).toEqual([]);
  }, 240_000);
});
