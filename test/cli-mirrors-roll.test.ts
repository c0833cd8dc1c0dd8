import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from './helpers/cli.js';
import { startCluster, type Cluster } from './helpers/cluster.js';
import { resolveWithComposer } from './helpers/composer-client.js';
import { REPO_ROOT } from './helpers/daemon.js';
import { startDnsFront, type DnsFront } from './helpers/dns-front.js';
import { isAlive, killLaunched, launchedMirrors } from './helpers/launched.js';
import { startPdns, type Pdns } from './helpers/pdns.js';
import { waitFor } from './helpers/wait-for.js';

const SERVICE = 'repo.example.test';
const SUBNETS = { eu: '10.1.2.0/24', us: '10.2.2.0/24' } as const;
const POOL = ['192.0.2.21', '192.0.2.22', '192.0.2.23', '192.0.2.24', '192.0.2.25'];

/**
 * `metasync mirrors roll` end to end: two regions of mirrors launched on
 * release 1.0.0 by the local launcher, real PowerDNS, and real Composer
 * clients in each region resolving through DNS the whole time. Both releases
 * point at this checkout's build: what differs is the version each server
 * records, which is what roll compares.
 */
describe('mirrors roll with the local launcher, PowerDNS and Composer clients reading throughout', () => {
  let pdns: Pdns;
  let cluster: Cluster;
  let dir: string;
  let launchDir: string;

  const cli = (args: string[]): Promise<CliResult> =>
    runCli(['--config', join(dir, 'metasync.json'), ...args], {
      env: { METASYNC_PDNS_API_KEY: pdns.apiKey, METASYNC_PRIMARY_TOKEN: cluster.token },
      timeoutMs: 240_000,
    });
  const addressMap = (): Record<string, string> => Object.fromEntries(launchedMirrors(launchDir).map((r) => [r.address, r.url]));
  const answers = (region: keyof typeof SUBNETS): Promise<string[]> => pdns.dig(SERVICE, { subnet: SUBNETS[region] });
  const addressOf = (id: string): string => launchedMirrors(launchDir).find((r) => r.mirrorId === id)!.address;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'metasync-roll-e2e-'));
    launchDir = join(dir, 'launch');
    // A release whose mirror dies at start: roll must stop there and leave DNS as it was.
    const broken = join(dir, 'broken-release');
    await mkdir(join(broken, 'packages', 'mirror', 'dist'), { recursive: true });
    await writeFile(
      join(broken, 'packages', 'mirror', 'dist', 'main.js'),
      "console.error('this release is broken on purpose');\nprocess.exit(1);\n",
    );
    pdns = await startPdns({ checkIntervalS: 1 });
    await pdns.createZone('example.test');
    cluster = await startCluster();
    await cluster.publish('acme/widget', '1.0.0');
    const config = {
      primary: cluster.primary.url,
      dns: {
        provider: 'powerdns',
        ttlS: 1,
        drainMarginMs: 500,
        powerdns: {
          apiUrl: pdns.apiUrl,
          zone: 'example.test',
          serviceName: SERVICE,
          regionSubnets: { eu: ['10.1.0.0/16'], us: ['10.2.0.0/16'] },
        },
      },
      launch: {
        local: {
          dir: launchDir,
          addresses: POOL,
          releases: { '1.0.0': REPO_ROOT, '1.1.0': REPO_ROOT, '2.0.0-broken': broken },
          mirrorArgs: ['--max-lag-ms', '2000', '--poll-interval-ms', '200'],
        },
      },
    };
    await writeFile(join(dir, 'metasync.json'), JSON.stringify(config, null, 2));
  });
  afterAll(async () => {
    if (launchDir !== undefined) killLaunched(launchDir);
    await cluster?.stop();
    await pdns?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('replaces every mirror region by region with 0 failed Composer runs and 0 failed requests, then stops at a broken release leaving DNS on the healthy mirrors', async () => {
    for (const [id, region] of [
      ['eu-1', 'eu'],
      ['us-1', 'us'],
    ] as const) {
      const up = await cli(['mirror', 'up', id, '--launch', 'local', '--region', region, '--release', '1.0.0', '--poll-ms', '200']);
      expect(up.code, up.stderr).toBe(0);
    }
    await waitFor(async () => (await answers('eu')).length === 1 && (await answers('us')).length === 1, {
      timeoutMs: 15_000,
      intervalMs: 200,
      what: 'one answer per region',
    });
    const oldPids = launchedMirrors(launchDir).map((r) => r.pid);
    const oldAddress = { eu: addressOf('eu-1'), us: addressOf('us-1') };

    // Composer clients in each region, through DNS, for the whole roll.
    const fronts: Record<'eu' | 'us', DnsFront> = {
      eu: await startDnsFront({ resolve: () => answers('eu'), addresses: addressMap, refreshMs: 300 }),
      us: await startDnsFront({ resolve: () => answers('us'), addresses: addressMap, refreshMs: 300 }),
    };
    const runs = { ok: 0, failed: 0, errors: [] as string[] };
    let reading = true;
    const reader = async (front: DnsFront): Promise<void> => {
      for (let i = 0; reading && i < 500; i++) {
        try {
          const result = await resolveWithComposer({ repoUrl: front.url, require: { 'acme/widget': '^1.0' }, timeoutMs: 60_000 });
          expect(result.versions['acme/widget']).toMatch(/^1\./);
          runs.ok++;
        } catch (err) {
          runs.failed++;
          if (runs.errors.length < 5) runs.errors.push((err as Error).message.slice(0, 1500));
        }
      }
    };
    const readers = [reader(fronts.eu), reader(fronts.us)];
    let rolled: CliResult;
    try {
      await cluster.publish('acme/widget', '1.0.1');
      rolled = await cli(['mirrors', 'roll', '--to', '1.1.0', '--poll-ms', '200', '--timeout-ms', '60000']);
      // Composer keeps reading the new mirrors for a moment after the last retire.
      await cluster.publish('acme/widget', '1.0.2');
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    } finally {
      reading = false;
      await Promise.all(readers);
      await fronts.eu.close();
      await fronts.us.close();
    }
    expect(rolled.code, rolled.stderr).toBe(0);
    expect(rolled.stdout).toContain('replaced eu-1 (1.0.0) with eu-1-v1-1-0 (1.1.0) in region eu');
    expect(rolled.stdout).toContain('replaced us-1 (1.0.0) with us-1-v1-1-0 (1.1.0) in region us');
    // Each new mirror was fresh and in DNS before its old one left DNS.
    expect(
      rolled.stderr.indexOf('registered eu-1-v1-1-0') === -1 ? rolled.stdout.indexOf('registered eu-1-v1-1-0') : 0,
    ).toBeGreaterThanOrEqual(0);
    expect(rolled.stderr.indexOf('eu-1-v1-1-0 is fresh and in DNS: retiring eu-1')).toBeLessThan(
      rolled.stderr.indexOf('eu-1 is out of DNS'),
    );

    const after = launchedMirrors(launchDir);
    expect(after.map((r) => [r.mirrorId, r.region, r.releaseVersion])).toEqual([
      ['eu-1-v1-1-0', 'eu', '1.1.0'],
      ['us-1-v1-1-0', 'us', '1.1.0'],
    ]);
    for (const pid of oldPids) expect(isAlive(pid)).toBe(false);
    expect(await answers('eu')).toEqual([addressOf('eu-1-v1-1-0')]);
    expect(await answers('us')).toEqual([addressOf('us-1-v1-1-0')]);

    console.log(
      `roll: composer runs ok ${runs.ok} failed ${runs.failed}; requests eu ${fronts.eu.stats.requests} us ${fronts.us.stats.requests}; failed requests ${fronts.eu.stats.failures + fronts.us.stats.failures}; by address ${JSON.stringify({ ...fronts.eu.stats.byAddress, ...fronts.us.stats.byAddress })}`,
    );
    expect(runs.errors).toEqual([]);
    expect(runs.failed).toBe(0);
    expect([...fronts.eu.stats.failureSamples, ...fronts.us.stats.failureSamples]).toEqual([]);
    expect(fronts.eu.stats.failures + fronts.us.stats.failures).toBe(0);
    // Every region always had an answer, and Composer reached old and new mirrors alike.
    expect(fronts.eu.stats.minAnswers).toBeGreaterThanOrEqual(1);
    expect(fronts.us.stats.minAnswers).toBeGreaterThanOrEqual(1);
    expect(runs.ok).toBeGreaterThanOrEqual(4);
    // Each region's clients reached its old and its new mirror (and, for a moment, maybe a healthy mirror of the
    // other region: pdns answers with the other group until its first check of a just-registered mirror).
    expect(Object.keys(fronts.eu.stats.byAddress)).toEqual(expect.arrayContaining([oldAddress.eu, addressOf('eu-1-v1-1-0')]));
    expect(Object.keys(fronts.us.stats.byAddress)).toEqual(expect.arrayContaining([oldAddress.us, addressOf('us-1-v1-1-0')]));

    // A rerun has nothing to do.
    const again = await cli(['mirrors', 'roll', '--to', '1.1.0']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('every running local mirror already runs release 1.1.0');

    // A release whose mirror cannot start: the roll stops at the first mirror, reports, and DNS keeps the healthy ones.
    const broken = await cli(['mirrors', 'roll', '--to', '2.0.0-broken', '--poll-ms', '200', '--timeout-ms', '30000']);
    expect(broken.code, broken.stderr).toBe(8);
    expect(broken.stderr).toContain('METASYNC_ERR_LAUNCH_FAILED: roll to 2.0.0-broken stopped at eu-1-v1-1-0 -> eu-1-v2-0-0-broken');
    expect(broken.stderr).toContain('this release is broken on purpose');
    expect(broken.stderr).not.toMatch(/\n\s+at /);
    expect(broken.stderr).toContain('credential of eu-1-v2-0-0-broken revoked');
    expect(launchedMirrors(launchDir).map((r) => r.mirrorId)).toEqual(['eu-1-v1-1-0', 'us-1-v1-1-0']);
    expect(await answers('eu')).toEqual([addressOf('eu-1-v1-1-0')]);
    expect(await answers('us')).toEqual([addressOf('us-1-v1-1-0')]);
  }, 480_000);
});
