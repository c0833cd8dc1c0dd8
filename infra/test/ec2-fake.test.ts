import {
  CreateTagsCommand,
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type RunInstancesCommandInput,
} from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fakeEc2ClientConfig, startEc2Fake, type Ec2Fake } from './ec2-fake/server.js';

/** The fake has to behave like EC2 where the launcher relies on it; these checks drive it with the real SDK. */
const run = (overrides: Partial<RunInstancesCommandInput> = {}): RunInstancesCommand =>
  new RunInstancesCommand({
    ImageId: 'ami-0123456789abcdef0',
    InstanceType: 't3.small',
    MinCount: 1,
    MaxCount: 1,
    ClientToken: 'token-1',
    UserData: Buffer.from('#cloud-config\n').toString('base64'),
    TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'mirror-id', Value: 'm1' }] }],
    ...overrides,
  });
const nameOf = async (promise: Promise<unknown>): Promise<string | undefined> =>
  promise.then(
    () => undefined,
    (err: unknown) => (err as Error).name,
  );

describe('EC2 Query-API fake (real SDK over HTTP)', () => {
  let fake: Ec2Fake;
  let eu: EC2Client;
  let us: EC2Client;
  beforeEach(async () => {
    fake = await startEc2Fake({ runningAfterPolls: 1, terminatedAfterPolls: 1 });
    eu = new EC2Client(fakeEc2ClientConfig(fake, 'eu-west-1'));
    us = new EC2Client(fakeEc2ClientConfig(fake, 'us-east-1'));
  });
  afterEach(async () => {
    eu.destroy();
    us.destroy();
    await fake.close();
  });

  it('answers a repeated ClientToken with the same reservation, also after termination, and refuses it with other parameters', async () => {
    const first = await eu.send(run());
    const again = await eu.send(run());
    expect(again.ReservationId).toBe(first.ReservationId);
    expect(again.Instances?.[0]?.InstanceId).toBe(first.Instances?.[0]?.InstanceId);
    expect(fake.instances()).toHaveLength(1);
    expect(await nameOf(eu.send(run({ InstanceType: 't3.large' })))).toBe('IdempotentParameterMismatch');
    await eu.send(new TerminateInstancesCommand({ InstanceIds: [first.Instances![0]!.InstanceId!] }));
    const afterTerminate = await eu.send(run());
    expect(afterTerminate.Instances?.[0]).toMatchObject({ InstanceId: first.Instances![0]!.InstanceId, State: { Name: 'shutting-down' } });
    expect(fake.instances()).toHaveLength(1);
  });

  it('keeps regions apart (from the SigV4 scope), moves instances through their states, and tags with CreateTags', async () => {
    const launched = await us.send(run());
    const id = launched.Instances![0]!.InstanceId!;
    expect(launched.Instances![0]!.State?.Name).toBe('pending');
    expect((await eu.send(new DescribeInstancesCommand({}))).Reservations).toEqual([]);
    expect(await nameOf(eu.send(new DescribeInstancesCommand({ InstanceIds: [id] })))).toBe('InvalidInstanceID.NotFound');
    await us.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    await us.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: 'managed-by', Value: 'metasync' }] }));
    const tagged = await us.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: 'tag:managed-by', Values: ['metasync'] },
          { Name: 'instance-state-name', Values: ['running'] },
        ],
      }),
    );
    expect(tagged.Reservations?.[0]?.Instances?.[0]).toMatchObject({
      InstanceId: id,
      State: { Name: 'running', Code: 16 },
      Tags: expect.arrayContaining([{ Key: 'mirror-id', Value: 'm1' }]) as unknown,
    });
    const terminated = await us.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    expect(terminated.TerminatingInstances?.[0]).toMatchObject({
      CurrentState: { Name: 'shutting-down' },
      PreviousState: { Name: 'running' },
    });
  });

  it('refuses user data over 16 KB and unknown filters; injected throttling is retried by the SDK', async () => {
    const big = Buffer.alloc(16 * 1024 + 1, 'x').toString('base64');
    expect(await nameOf(eu.send(run({ UserData: big })))).toBe('InvalidParameterValue');
    expect(await nameOf(eu.send(new DescribeInstancesCommand({ Filters: [{ Name: 'bogus', Values: ['x'] }] })))).toBe(
      'InvalidParameterValue',
    );
    fake.inject({ action: 'DescribeInstances', code: 'RequestLimitExceeded', status: 503, times: 1 });
    const retrying = new EC2Client({ ...fakeEc2ClientConfig(fake, 'eu-west-1'), maxAttempts: 3 });
    try {
      await retrying.send(new DescribeInstancesCommand({}));
    } finally {
      retrying.destroy();
    }
    expect(fake.calls.slice(-2)).toEqual(['DescribeInstances!RequestLimitExceeded', 'DescribeInstances']);
  });
});
