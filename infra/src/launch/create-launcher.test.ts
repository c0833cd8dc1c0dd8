import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeInstancesCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCliConfig } from '../cli-config.js';
import { createLauncher } from './create-launcher.js';

const dir = mkdtempSync(join(tmpdir(), 'metasync-launch-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const configFile = (content: unknown): string => {
  const path = join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(content));
  return path;
};
const awsSection = {
  regions: {
    'eu-west-1': {
      amiId: 'ami-0123456789abcdef0',
      instanceType: 't3.small',
      subnetId: 'subnet-0123456789abcdef0',
      securityGroupIds: ['sg-0123456789abcdef0'],
      instanceProfile: 'metasync-mirror',
    },
  },
  releases: { '0.1.0': { url: 'https://releases.example.com/metasync-0.1.0.tar.gz', sha256: 'ab'.repeat(32) } },
  acmeEmail: 'ops@example.com',
};
const dns = { provider: 'route53', route53: { hostedZoneId: 'ZFROMDNS', serviceName: 'repo.example.com' } };

describe('launch config and createLauncher', () => {
  it('reads launch.aws from the CLI config with its defaults', () => {
    const config = loadCliConfig({ configPath: configFile({ dns, launch: { aws: awsSection } }), env: {} });
    expect(config.launch.aws).toMatchObject({ ...awsSection, addressType: 'public', launchTimeoutMs: 600_000, pollIntervalMs: 5_000 });
    expect(loadCliConfig({ configPath: configFile({}), env: {} }).launch.aws).toBeUndefined();
  });

  it('reports every bad launch.aws field in one METASYNC_ERR_CONFIG_INVALID', () => {
    const bad = {
      ...awsSection,
      regions: { 'eu-west-1': { ...awsSection.regions['eu-west-1'], amiId: 'ubuntu', securityGroupIds: [] } },
      releases: { '0.1.0': { url: 'https://x.example/a.tgz', sha256: 'nothex' } },
    };
    expect(() => loadCliConfig({ configPath: configFile({ launch: { aws: bad } }), env: {} })).toThrow(
      expect.objectContaining({
        code: 'METASYNC_ERR_CONFIG_INVALID',
        message: expect.stringMatching(
          /launch\.aws\.regions\.eu-west-1\.amiId: must be an AMI id.*launch\.aws\.regions\.eu-west-1\.securityGroupIds.*launch\.aws\.releases\.0\.1\.0\.sha256/,
        ) as unknown,
      }),
    );
  });

  it('says the local launcher is not built here, and refuses aws without its section or a Route53 zone', () => {
    const config = loadCliConfig({ configPath: configFile({ launch: { aws: awsSection } }), env: {} });
    expect(() => createLauncher('local', config)).toThrow(/--launch local: not built here/); // launchers.ts builds the local one
    expect(() => createLauncher('aws', { ...config, launch: {} })).toThrow(/needs a launch\.aws section/);
    expect(() => createLauncher('aws', config)).toThrow(
      expect.objectContaining({
        code: 'METASYNC_ERR_CONFIG_INVALID',
        message: expect.stringMatching(/set launch\.aws\.hostedZoneId/) as unknown,
      }),
    );
  });

  it("builds EC2 clients for the spec's region and fills the mirror's DNS settings from dns.route53", async () => {
    const ec2 = mockClient(EC2Client);
    try {
      ec2
        .on(DescribeInstancesCommand)
        .resolvesOnce({ Reservations: [] })
        .resolves({
          Reservations: [{ Instances: [{ InstanceId: 'i-1', State: { Name: 'running' }, PublicIpAddress: '198.51.100.4' }] }],
        });
      ec2.on(RunInstancesCommand).resolves({ Instances: [{ InstanceId: 'i-1', State: { Name: 'pending' } }] });
      const config = loadCliConfig({ configPath: configFile({ dns, launch: { aws: awsSection } }), env: {} });
      const { launcher, close } = createLauncher('aws', config);
      const server = await launcher.launch({
        mirrorId: 'eu-1',
        region: 'eu-west-1',
        releaseVersion: '0.1.0',
        primaryUrl: 'https://primary.repo.example.com',
        credential: 'msm_x',
        primaryKey: 'k1:AAAA',
      });
      close();
      expect(server.address).toBe('198.51.100.4');
      const userData = Buffer.from(ec2.commandCalls(RunInstancesCommand)[0]!.args[0].input.UserData!, 'base64').toString('utf8');
      expect(userData).toContain('METASYNC_ROUTE53_ZONE_ID=ZFROMDNS\n');
      expect(userData).toContain('METASYNC_ROUTE53_SERVICE_NAME=repo.example.com\n');
      expect(await ec2.call(0).thisValue.config.region()).toBe('eu-west-1');
    } finally {
      ec2.restore();
    }
  });
});
