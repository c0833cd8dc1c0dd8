import {
  ChangeResourceRecordSetsCommand,
  CreateHealthCheckCommand,
  DeleteHealthCheckCommand,
  GetChangeCommand,
  ListResourceRecordSetsCommand,
  Route53Client,
  type HealthCheckConfig,
  type ResourceRecordSet,
} from '@aws-sdk/client-route-53';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fakeClientConfig, startRoute53Fake, type Route53Fake } from './route53-fake/server.js';

const config: HealthCheckConfig = {
  Type: 'HTTP_STR_MATCH',
  IPAddress: '192.0.2.1',
  Port: 80,
  ResourcePath: '/health/fresh',
  SearchString: 'fresh',
  RequestInterval: 10,
  FailureThreshold: 2,
};
const mirrorSet = (id: string, address: string, ttl = 60): ResourceRecordSet => ({
  Name: 'eu-west-1.regions.repo.example.com.',
  Type: 'A',
  SetIdentifier: id,
  MultiValueAnswer: true,
  TTL: ttl,
  ResourceRecords: [{ Value: address }],
});

describe('route53 fake (driven by the real SDK)', () => {
  let fake: Route53Fake;
  let client: Route53Client;
  let zoneId: string;
  beforeEach(async () => {
    fake = await startRoute53Fake({ zones: [{ name: 'example.com' }], insyncAfterPolls: 2 });
    client = new Route53Client(fakeClientConfig(fake));
    zoneId = fake.zoneIds[0]!;
  });
  afterEach(async () => {
    client.destroy();
    await fake.close();
  });
  const change = (changes: { Action: 'CREATE' | 'DELETE' | 'UPSERT'; ResourceRecordSet: ResourceRecordSet }[]) =>
    client.send(new ChangeResourceRecordSetsCommand({ HostedZoneId: zoneId, ChangeBatch: { Changes: changes } }));

  it('refuses a DELETE whose values differ from the listed record, and accepts the exact one', async () => {
    await change([{ Action: 'CREATE', ResourceRecordSet: mirrorSet('m1', '192.0.2.1') }]);
    await expect(change([{ Action: 'DELETE', ResourceRecordSet: mirrorSet('m1', '192.0.2.1', 30) }])).rejects.toMatchObject({
      name: 'InvalidChangeBatch',
      message: expect.stringContaining('do not match') as unknown,
    });
    const listed = await client.send(new ListResourceRecordSetsCommand({ HostedZoneId: zoneId }));
    await change([{ Action: 'DELETE', ResourceRecordSet: listed.ResourceRecordSets![0]! }]);
    expect(fake.zone(zoneId).records).toEqual([]);
  });

  it('applies a batch all or nothing', async () => {
    await expect(
      change([
        { Action: 'CREATE', ResourceRecordSet: mirrorSet('m1', '192.0.2.1') },
        { Action: 'DELETE', ResourceRecordSet: mirrorSet('absent', '192.0.2.9') },
      ]),
    ).rejects.toMatchObject({ name: 'InvalidChangeBatch' });
    expect(fake.zone(zoneId).records).toEqual([]);
  });

  it('allows one latency record per region for a name and type', async () => {
    await change([{ Action: 'CREATE', ResourceRecordSet: mirrorSet('m1', '192.0.2.1') }]);
    const latency = (id: string): ResourceRecordSet => ({
      Name: 'repo.example.com.',
      Type: 'A',
      SetIdentifier: id,
      Region: 'eu-west-1',
      AliasTarget: { HostedZoneId: zoneId, DNSName: 'eu-west-1.regions.repo.example.com.', EvaluateTargetHealth: true },
    });
    await change([{ Action: 'CREATE', ResourceRecordSet: latency('a') }]);
    await expect(change([{ Action: 'CREATE', ResourceRecordSet: latency('b') }])).rejects.toMatchObject({
      name: 'InvalidChangeBatch',
      message: expect.stringContaining('one latency record per region') as unknown,
    });
  });

  it('refuses an alias whose target does not exist and a record naming a missing health check', async () => {
    await expect(
      change([
        {
          Action: 'CREATE',
          ResourceRecordSet: {
            Name: 'repo.example.com.',
            Type: 'A',
            SetIdentifier: 'eu',
            Region: 'eu-west-1',
            AliasTarget: { HostedZoneId: zoneId, DNSName: 'nowhere.example.com.', EvaluateTargetHealth: true },
          },
        },
      ]),
    ).rejects.toMatchObject({ name: 'InvalidChangeBatch' });
    await expect(
      change([{ Action: 'CREATE', ResourceRecordSet: { ...mirrorSet('m1', '192.0.2.1'), HealthCheckId: 'no-such-check' } }]),
    ).rejects.toMatchObject({ name: 'InvalidChangeBatch' });
  });

  it('returns the existing check for a repeated CallerReference and refuses a changed config or a deleted check', async () => {
    const first = await client.send(new CreateHealthCheckCommand({ CallerReference: 'ref-1', HealthCheckConfig: config }));
    const again = await client.send(new CreateHealthCheckCommand({ CallerReference: 'ref-1', HealthCheckConfig: config }));
    expect(again.HealthCheck?.Id).toBe(first.HealthCheck?.Id);
    await expect(
      client.send(new CreateHealthCheckCommand({ CallerReference: 'ref-1', HealthCheckConfig: { ...config, Port: 8080 } })),
    ).rejects.toMatchObject({ name: 'HealthCheckAlreadyExists' });
    await client.send(new DeleteHealthCheckCommand({ HealthCheckId: first.HealthCheck!.Id }));
    await expect(client.send(new CreateHealthCheckCommand({ CallerReference: 'ref-1', HealthCheckConfig: config }))).rejects.toMatchObject({
      name: 'HealthCheckAlreadyExists',
    });
    await expect(client.send(new DeleteHealthCheckCommand({ HealthCheckId: first.HealthCheck!.Id }))).rejects.toMatchObject({
      name: 'NoSuchHealthCheck',
    });
  });

  it('reports a change PENDING until polled enough, then INSYNC', async () => {
    const out = await change([{ Action: 'CREATE', ResourceRecordSet: mirrorSet('m1', '192.0.2.1') }]);
    expect(out.ChangeInfo?.Status).toBe('PENDING');
    const statuses: string[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await client.send(new GetChangeCommand({ Id: out.ChangeInfo!.Id }))).ChangeInfo!.Status!);
    expect(statuses).toEqual(['PENDING', 'INSYNC', 'INSYNC']);
  });

  it('can also hold a change PENDING for a minimum time', async () => {
    const slow = await startRoute53Fake({ zones: [{ name: 'example.com' }], insyncAfterPolls: 0, insyncAfterMs: 60_000 });
    const slowClient = new Route53Client(fakeClientConfig(slow));
    try {
      const out = await slowClient.send(
        new ChangeResourceRecordSetsCommand({
          HostedZoneId: slow.zoneIds[0]!,
          ChangeBatch: { Changes: [{ Action: 'CREATE', ResourceRecordSet: mirrorSet('m1', '192.0.2.1') }] },
        }),
      );
      expect((await slowClient.send(new GetChangeCommand({ Id: out.ChangeInfo!.Id }))).ChangeInfo?.Status).toBe('PENDING');
    } finally {
      slowClient.destroy();
      await slow.close();
    }
  });

  it('answers injected errors in the ErrorResponse shape the SDK maps to named errors', async () => {
    fake.inject({ action: 'ListResourceRecordSets', code: 'Throttling', message: 'Rate exceeded' });
    fake.inject({ action: 'CreateHealthCheck', code: 'PriorRequestNotComplete' });
    fake.inject({ action: 'ChangeResourceRecordSets', code: 'InvalidChangeBatch', message: 'injected refusal' });
    await expect(client.send(new ListResourceRecordSetsCommand({ HostedZoneId: zoneId }))).rejects.toMatchObject({
      name: 'Throttling',
      message: 'Rate exceeded',
      $metadata: { httpStatusCode: 400 },
    });
    await expect(client.send(new CreateHealthCheckCommand({ CallerReference: 'x', HealthCheckConfig: config }))).rejects.toMatchObject({
      name: 'PriorRequestNotComplete',
    });
    await expect(change([{ Action: 'CREATE', ResourceRecordSet: mirrorSet('m1', '192.0.2.1') }])).rejects.toMatchObject({
      name: 'InvalidChangeBatch',
      message: 'injected refusal',
    });
    await expect(client.send(new ListResourceRecordSetsCommand({ HostedZoneId: zoneId }))).resolves.toMatchObject({
      ResourceRecordSets: [],
    });
  });

  it('pages record sets in Route53 order with Next* markers', async () => {
    await change(['m1', 'm2', 'm3'].map((id, i) => ({ Action: 'CREATE' as const, ResourceRecordSet: mirrorSet(id, `192.0.2.${i + 1}`) })));
    const first = await client.send(new ListResourceRecordSetsCommand({ HostedZoneId: zoneId, MaxItems: 2 }));
    expect(first.ResourceRecordSets?.map((s) => s.SetIdentifier)).toEqual(['m1', 'm2']);
    expect(first).toMatchObject({ IsTruncated: true, NextRecordIdentifier: 'm3' });
    const second = await client.send(
      new ListResourceRecordSetsCommand({
        HostedZoneId: zoneId,
        StartRecordName: first.NextRecordName,
        StartRecordType: first.NextRecordType,
        StartRecordIdentifier: first.NextRecordIdentifier,
      }),
    );
    expect(second.ResourceRecordSets?.map((s) => s.SetIdentifier)).toEqual(['m3']);
  });
});
