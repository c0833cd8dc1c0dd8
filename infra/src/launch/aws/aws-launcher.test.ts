import {
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type DescribeInstancesCommandInput,
  type Instance,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Clock } from '@metasync/dns';
import type { LaunchSpec } from '../launcher.js';
import { awsLaunchSchema } from './aws-launch-config.js';
import { createAwsLauncher } from './aws-launcher.js';
import { deriveClientToken } from './client-token.js';

const config = awsLaunchSchema.parse({
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
  pollIntervalMs: 1_000,
});
const spec: LaunchSpec = {
  mirrorId: 'eu-1',
  region: 'eu-west-1',
  releaseVersion: '0.1.0',
  primaryUrl: 'https://primary.repo.example.com',
  credential: 'msm_secret',
  primaryKey: 'k1:AAAA',
};
const tags = [
  { Key: 'managed-by', Value: 'metasync' },
  { Key: 'mirror-id', Value: 'eu-1' },
  { Key: 'metasync:release', Value: '0.1.0' },
];
const instance = (state: string, extra: Partial<Instance> = {}): Instance => ({
  InstanceId: 'i-0abc',
  State: { Name: state as never },
  Tags: tags,
  PrivateIpAddress: '10.0.0.5',
  ...extra,
});
const reservations = (...instances: Instance[]) => ({ Reservations: instances.length === 0 ? [] : [{ Instances: instances }] });

function awsError(name: string): Error {
  return Object.assign(new Error(name), { name, $metadata: { httpStatusCode: 400 } });
}

describe('aws launcher (aws-sdk-client-mock)', () => {
  const ec2 = mockClient(EC2Client);
  let nowMs = 0;
  const clock: Clock = {
    now: () => nowMs,
    sleep: (ms) => {
      nowMs += ms;
      return Promise.resolve();
    },
  };
  const launcher = () =>
    createAwsLauncher({
      config,
      dns: { hostedZoneId: 'Z0123', serviceName: 'repo.example.com' },
      node: { version: '24.22.3', sha512: 'b'.repeat(128) },
      clientFor: (region) => new EC2Client({ region }),
      clock,
    });
  const order = (): string[] => ec2.calls().map((call) => (call.args[0] as object).constructor.name);
  const describeInput = (index: number): DescribeInstancesCommandInput => ec2.commandCalls(DescribeInstancesCommand)[index]!.args[0].input;

  beforeEach(() => {
    ec2.reset();
    nowMs = 0;
  });

  it('launch: looks for the tagged instance, runs one with the ClientToken and tags, then polls it until running with an address', async () => {
    ec2
      .on(DescribeInstancesCommand)
      .resolvesOnce(reservations())
      .resolvesOnce(reservations(instance('pending')))
      .resolvesOnce(reservations(instance('running', { PublicIpAddress: '198.51.100.9' })));
    ec2.on(RunInstancesCommand).resolves({ Instances: [instance('pending')] });
    const server = await launcher().launch(spec);
    expect(order()).toEqual(['DescribeInstancesCommand', 'RunInstancesCommand', 'DescribeInstancesCommand', 'DescribeInstancesCommand']);
    expect(describeInput(0).Filters).toEqual([
      { Name: 'tag:managed-by', Values: ['metasync'] },
      { Name: 'tag:mirror-id', Values: ['eu-1'] },
      { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
    ]);
    expect(describeInput(1).InstanceIds).toEqual(['i-0abc']);
    const run = ec2.commandCalls(RunInstancesCommand)[0]!.args[0].input;
    expect(run).toMatchObject({
      ImageId: 'ami-0123456789abcdef0',
      InstanceType: 't3.small',
      MinCount: 1,
      MaxCount: 1,
      ClientToken: deriveClientToken({ mirrorId: 'eu-1', releaseVersion: '0.1.0', attempt: 0 }),
      IamInstanceProfile: { Name: 'metasync-mirror' },
      NetworkInterfaces: [
        { DeviceIndex: 0, SubnetId: 'subnet-0123456789abcdef0', Groups: ['sg-0123456789abcdef0'], AssociatePublicIpAddress: true },
      ],
      MetadataOptions: { HttpTokens: 'required' },
    });
    expect(run.TagSpecifications?.[0]).toMatchObject({ ResourceType: 'instance', Tags: expect.arrayContaining(tags) as unknown });
    expect(Buffer.from(run.UserData!, 'base64').toString('utf8')).toContain('METASYNC_MIRROR_ID=eu-1');
    expect(server).toMatchObject({ serverId: 'i-0abc', address: '198.51.100.9', url: 'https://198.51.100.9', state: 'running' });
    // Polls are spaced by pollIntervalMs.
    expect(nowMs).toBe(1_000);
  });

  it('launch of a mirror that already has its instance: no RunInstances, straight to the wait', async () => {
    ec2
      .on(DescribeInstancesCommand)
      .resolvesOnce(reservations(instance('pending')))
      .resolves(reservations(instance('running', { PublicIpAddress: '198.51.100.9' })));
    await launcher().launch(spec);
    expect(order()).toEqual(['DescribeInstancesCommand', 'DescribeInstancesCommand']);
  });

  it('launch whose first token belongs to a terminated instance launched with other parameters: checks it, then the next token', async () => {
    ec2
      .on(DescribeInstancesCommand)
      .resolvesOnce(reservations())
      .resolvesOnce(reservations(instance('terminated', { InstanceId: 'i-0old' })))
      .resolves(reservations(instance('running', { PublicIpAddress: '198.51.100.9' })));
    ec2
      .on(RunInstancesCommand)
      .rejectsOnce(awsError('IdempotentParameterMismatch'))
      .resolves({ Instances: [instance('pending')] });
    await launcher().launch(spec);
    expect(order()).toEqual([
      'DescribeInstancesCommand',
      'RunInstancesCommand',
      'DescribeInstancesCommand',
      'RunInstancesCommand',
      'DescribeInstancesCommand',
    ]);
    const token0 = deriveClientToken({ mirrorId: 'eu-1', releaseVersion: '0.1.0', attempt: 0 });
    expect(describeInput(1).Filters).toEqual([{ Name: 'client-token', Values: [token0] }]);
    expect(ec2.commandCalls(RunInstancesCommand)[1]!.args[0].input.ClientToken).toBe(
      deriveClientToken({ mirrorId: 'eu-1', releaseVersion: '0.1.0', attempt: 1 }),
    );
  });

  it('launch refuses a token mismatch whose instance is alive or not visible, without launching', async () => {
    ec2.on(DescribeInstancesCommand).resolves(reservations());
    ec2.on(RunInstancesCommand).rejects(awsError('IdempotentParameterMismatch'));
    await expect(launcher().launch(spec)).rejects.toMatchObject({ code: 'METASYNC_ERR_EC2_CONFLICT' });
    expect(order()).toEqual(['DescribeInstancesCommand', 'RunInstancesCommand', 'DescribeInstancesCommand']);
  });

  it('destroy: finds the instance, terminates it, then waits until it is shutting down', async () => {
    ec2
      .on(DescribeInstancesCommand)
      .resolvesOnce(reservations(instance('running')))
      .resolvesOnce(reservations(instance('running')))
      .resolves(reservations(instance('shutting-down')));
    ec2.on(TerminateInstancesCommand).resolves({});
    await launcher().destroy('eu-1');
    expect(order()).toEqual([
      'DescribeInstancesCommand',
      'TerminateInstancesCommand',
      'DescribeInstancesCommand',
      'DescribeInstancesCommand',
    ]);
    expect(describeInput(0).Filters?.at(-1)).toEqual({
      Name: 'instance-state-name',
      Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'],
    });
    expect(ec2.commandCalls(TerminateInstancesCommand)[0]!.args[0].input.InstanceIds).toEqual(['i-0abc']);
  });

  it('destroy of an instance already shutting down terminates nothing again; of none, makes one call', async () => {
    ec2.on(DescribeInstancesCommand).resolves(reservations(instance('shutting-down')));
    await launcher().destroy('eu-1');
    expect(order()).toEqual(['DescribeInstancesCommand', 'DescribeInstancesCommand']);
    ec2.reset();
    ec2.on(DescribeInstancesCommand).resolves(reservations());
    await launcher().destroy('eu-1');
    expect(order()).toEqual(['DescribeInstancesCommand']);
  });

  it('wraps a failed call in METASYNC_ERR_EC2_CALL_FAILED naming the call and the AWS error', async () => {
    ec2.on(DescribeInstancesCommand).resolves(reservations());
    ec2.on(RunInstancesCommand).rejects(awsError('UnauthorizedOperation'));
    await expect(launcher().launch(spec)).rejects.toMatchObject({
      code: 'METASYNC_ERR_EC2_CALL_FAILED',
      message: expect.stringMatching(/^RunInstances for mirror eu-1 failed: UnauthorizedOperation/) as unknown,
    });
  });
});
