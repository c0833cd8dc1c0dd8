import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRoute53Fake, type Route53Fake } from '../packages/dns/test/route53-fake/server.js';
import { route53FakeEnv, runCli, type CliResult } from './helpers/cli.js';
import { startCluster, type Cluster } from './helpers/cluster.js';

const ADMIN_TOKEN = 'retire-drain-admin-token';

describe(
  'metasync mirror retire drains the mirror through POST /admin/drain (real primary and mirrors, Route53 fake)',
  { timeout: 60_000 },
  () => {
    let cluster: Cluster;
    let fake: Route53Fake;
    let dir: string;

    const cli = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> =>
      runCli(args, {
        env: {
          METASYNC_PRIMARY: cluster.primary.url,
          // mirror retire revokes the mirror's credential last: it needs an admin token of the primary.
          METASYNC_PRIMARY_TOKEN: cluster.token,
          ...route53FakeEnv(fake, { stateFile: join(dir, 'dns-state.json'), ttlS: 1, drainMarginMs: 200 }),
          ...env,
        },
        timeoutMs: 30_000,
      });

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'metasync-cli-drain-'));
      fake = await startRoute53Fake({ zones: [{ name: 'example.com' }], insyncAfterPolls: 1 });
      cluster = await startCluster();
      await cluster.publish('acme/widget', '1.0.0');
    });
    afterAll(async () => {
      await cluster?.stop();
      await fake?.close();
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    });

    it('after the DNS withdraw and before the stop command, the mirror is draining (health 503 draining, files served)', async () => {
      const mirror = (await cluster.startMirror({ mirrorId: 'drained', region: 'eu-west-1', args: ['--admin-token', ADMIN_TOKEN] })).daemon;
      const flags = ['--url', mirror.url, '--region', 'eu-west-1'];
      const up = await cli(['mirror', 'up', 'drained', ...flags, '--poll-ms', '100']);
      expect(up.code, up.stderr).toBe(0);
      const stopCommand = [
        `curl -s ${mirror.url}/health/fresh > ${join(dir, 'health-at-stop.txt')}`,
        `curl -sf ${mirror.url}/p2/acme/widget.json > ${join(dir, 'file-at-stop.json')}`,
        `kill -TERM ${mirror.child.pid}`,
      ].join(' && ');
      // --force: it is the only mirror in DNS (retire refuses to empty the name otherwise).
      const retired = await cli(
        ['mirror', 'retire', 'drained', ...flags, '--force', '--stop-command', stopCommand, '--timeout-ms', '20000'],
        {
          METASYNC_ADMIN_TOKEN: ADMIN_TOKEN,
        },
      );
      expect(retired.code, retired.stderr).toBe(0);
      expect(retired.stderr).toMatch(/drained is draining: \{"draining":true,"dns":"off"/);
      expect(retired.stderr.indexOf('dns: wait-ttl')).toBeLessThan(retired.stderr.indexOf('draining drained'));
      expect(retired.stderr.indexOf('draining drained')).toBeLessThan(retired.stderr.indexOf('stopping drained'));
      expect(await readFile(join(dir, 'health-at-stop.txt'), 'utf8')).toBe('draining\n');
      expect(await readFile(join(dir, 'file-at-stop.json'), 'utf8')).toContain('"1.0.0"');
      expect(await mirror.exited).toMatchObject({ code: 0 });
      expect(fake.zone(fake.zoneIds[0]!).records).toEqual([]);
      expect(fake.healthChecks()).toEqual([]);
    });

    it('stops before the stop command when the mirror refuses the admin token (exit 2), and goes on past a mirror without one', async () => {
      const noToken = (await cluster.startMirror({ mirrorId: 'plain', region: 'eu-west-1' })).daemon;
      const plainFlags = ['--url', noToken.url, '--region', 'eu-west-1'];
      const plain = await cli(
        ['mirror', 'retire', 'plain', ...plainFlags, '--stop-command', `kill -TERM ${noToken.child.pid}`, '--timeout-ms', '20000'],
        { METASYNC_ADMIN_TOKEN: ADMIN_TOKEN },
      );
      expect(plain.code, plain.stderr).toBe(0);
      expect(plain.stderr).toContain('plain has no admin token configured');
      expect(await noToken.exited).toMatchObject({ code: 0 });

      const other = (await cluster.startMirror({ mirrorId: 'other', region: 'eu-west-1', args: ['--admin-token', ADMIN_TOKEN] })).daemon;
      const otherFlags = ['--url', other.url, '--region', 'eu-west-1'];
      const refused = await cli(
        ['mirror', 'retire', 'other', ...otherFlags, '--stop-command', `kill -TERM ${other.child.pid}`, '--timeout-ms', '20000'],
        { METASYNC_ADMIN_TOKEN: 'wrong' },
      );
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('refused the admin token (HTTP 401)');
      expect(other.child.exitCode).toBeNull();
      expect((await fetch(`${other.url}/health/fresh`)).status).toBe(200);
    });
  },
);
