import {
  ChangeResourceRecordSetsCommand,
  ChangeTagsForResourceCommand,
  CreateHealthCheckCommand,
  DeleteHealthCheckCommand,
  GetChangeCommand,
  ListHealthChecksCommand,
  ListResourceRecordSetsCommand,
  ListTagsForResourceCommand,
  Route53Client,
  type ResourceRecordSet,
} from '@aws-sdk/client-route-53';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Clock } from '../registrar.js';
import { deriveCallerReference, healthCheckConfigFor } from './records.js';
import { createRoute53Registrar } from './registrar.js';
import { createMemoryStateStore } from './state-file.js';

const ZONE = 'Z0EXAMPLE';
const mirror = { mirrorId: 'm1', region: 'eu-west-1', address: '192.0.2.11', healthUrl: 'http://192.0.2.11:8080/health/fresh' };
const REGIONAL = 'eu-west-1.regions.repo.example.com.';
const listedRecord: ResourceRecordSet = {
  Name: REGIONAL,
  Type: 'A',
  SetIdentifier: 'm1',
  MultiValueAnswer: true,
  TTL: 60,
  ResourceRecords: [{ Value: '192.0.2.11' }],
  HealthCheckId: 'hc-1',
};
const listedAlias: ResourceRecordSet = {
  Name: 'repo.example.com.',
  Type: 'A',
  SetIdentifier: 'eu-west-1',
  Region: 'eu-west-1',
  AliasTarget: { HostedZoneId: ZONE, DNSName: REGIONAL, EvaluateTargetHealth: true },
};

function error(name: string, message = name): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: 400 } });
}

describe('route53 registrar (aws-sdk-client-mock)', () => {
  const r53 = mockClient(Route53Client);
  let nowMs = 0;
  const slept: number[] = [];
  const clock: Clock = {
    now: () => nowMs,
    sleep: (ms) => {
      slept.push(ms);
      nowMs += ms;
      return Promise.resolve();
    },
  };
  let state = createMemoryStateStore();
  const registrar = () =>
    createRoute53Registrar({
      client: new Route53Client({ region: 'us-east-1' }),
      hostedZoneId: ZONE,
      serviceName: 'repo.example.com',
      state,
      clock,
      ttlS: 60,
      drainMarginMs: 10_000,
      retry: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1_000 },
      insyncPollMs: 500,
    });
  const order = (): string[] =>
    r53.calls().map((c) => (c.args[0] as { constructor: { name: string } }).constructor.name.replace(/Command$/, ''));

  beforeEach(() => {
    r53.reset();
    state = createMemoryStateStore();
    nowMs = 1_000_000;
    slept.length = 0;
    r53.on(CreateHealthCheckCommand).resolves({
      HealthCheck: { Id: 'hc-1', CallerReference: 'x', HealthCheckConfig: { Type: 'HTTP_STR_MATCH' }, HealthCheckVersion: 1 },
      Location: '',
    });
    r53.on(ChangeTagsForResourceCommand).resolves({});
    r53.on(ChangeResourceRecordSetsCommand).resolves({ ChangeInfo: { Id: '/change/C1', Status: 'PENDING', SubmittedAt: new Date() } });
    r53
      .on(GetChangeCommand)
      .resolvesOnce({ ChangeInfo: { Id: '/change/C1', Status: 'PENDING', SubmittedAt: new Date() } })
      .resolves({ ChangeInfo: { Id: '/change/C1', Status: 'INSYNC', SubmittedAt: new Date() } });
    r53.on(ListHealthChecksCommand).resolves({ HealthChecks: [], Marker: '', IsTruncated: false, MaxItems: 100 });
    r53.on(DeleteHealthCheckCommand).resolves({});
    r53.on(ListResourceRecordSetsCommand).resolves({ ResourceRecordSets: [], IsTruncated: false, MaxItems: 300 });
  });

  it('derives the CallerReference from zone, regional name, mirror and generation only', () => {
    const base = { hostedZoneId: ZONE, regionalName: REGIONAL, mirrorId: 'm1', generation: 0 };
    const ref = deriveCallerReference(base);
    expect(ref).toMatch(/^metasync-[0-9a-f]{40}$/);
    expect(ref.length).toBeLessThanOrEqual(64);
    expect(deriveCallerReference({ ...base })).toBe(ref);
    for (const change of [
      { hostedZoneId: 'Z2' },
      { regionalName: 'us-east-1.regions.repo.example.com.' },
      { mirrorId: 'm2' },
      { generation: 1 },
    ]) {
      expect(deriveCallerReference({ ...base, ...change })).not.toBe(ref);
    }
  });

  it('builds a string-match health check on the freshness path', () => {
    expect(healthCheckConfigFor('https://m1.example.net/health/fresh?x=1', { requestIntervalS: 10, failureThreshold: 2 })).toEqual({
      Type: 'HTTPS_STR_MATCH',
      FullyQualifiedDomainName: 'm1.example.net',
      Port: 443,
      ResourcePath: '/health/fresh?x=1',
      SearchString: 'fresh',
      RequestInterval: 10,
      FailureThreshold: 2,
      EnableSNI: true,
    });
  });

  it('registers in order: save reference, create check, tag, upsert, poll until INSYNC', async () => {
    await registrar().register(mirror);
    expect(order()).toEqual([
      'CreateHealthCheck',
      'ChangeTagsForResource',
      'ListResourceRecordSets',
      'ChangeResourceRecordSets',
      'GetChange',
      'GetChange',
    ]);
    const ref = deriveCallerReference({ hostedZoneId: ZONE, regionalName: REGIONAL, mirrorId: 'm1', generation: 0 });
    expect(r53.commandCalls(CreateHealthCheckCommand)[0]?.args[0].input.CallerReference).toBe(ref);
    expect(state.snapshot()[`route53/${ZONE}/m1`]).toMatchObject({ callerReference: ref, healthCheckId: 'hc-1', generation: 0 });
    expect(r53.commandCalls(ChangeResourceRecordSetsCommand)[0]?.args[0].input.ChangeBatch?.Changes).toEqual([
      { Action: 'UPSERT', ResourceRecordSet: listedRecord },
      { Action: 'UPSERT', ResourceRecordSet: listedAlias },
    ]);
    expect(slept).toEqual([500]);
  });

  it('saves the CallerReference before calling CreateHealthCheck', async () => {
    r53.on(CreateHealthCheckCommand).callsFake(() => {
      const saved = state.snapshot()[`route53/${ZONE}/m1`];
      expect(saved?.callerReference).toMatch(/^metasync-/);
      throw error('AccessDenied', 'not allowed');
    });
    await expect(registrar().register(mirror)).rejects.toMatchObject({ code: 'METASYNC_ERR_DNS_CALL_FAILED' });
  });

  it('moves to the next generation when the CallerReference is taken by a deleted check', async () => {
    r53
      .on(CreateHealthCheckCommand)
      .rejectsOnce(error('HealthCheckAlreadyExists'))
      .resolves({
        HealthCheck: { Id: 'hc-2', CallerReference: 'x', HealthCheckConfig: { Type: 'HTTP' }, HealthCheckVersion: 1 },
        Location: '',
      });
    await registrar().register(mirror);
    const refs = r53.commandCalls(CreateHealthCheckCommand).map((c) => c.args[0].input.CallerReference);
    expect(refs).toEqual(
      [0, 1].map((generation) => deriveCallerReference({ hostedZoneId: ZONE, regionalName: REGIONAL, mirrorId: 'm1', generation })),
    );
    expect(state.snapshot()[`route53/${ZONE}/m1`]).toMatchObject({ generation: 1, healthCheckId: 'hc-2' });
  });

  it('retires: DELETE exactly the listed record and the last alias, INSYNC, wait TTL + margin, then DeleteHealthCheck', async () => {
    r53
      .on(ListResourceRecordSetsCommand, { StartRecordName: REGIONAL, StartRecordType: 'A' })
      .resolvesOnce({ ResourceRecordSets: [listedRecord], IsTruncated: false, MaxItems: 100 })
      .resolves({ ResourceRecordSets: [], IsTruncated: false, MaxItems: 100 });
    r53
      .on(ListResourceRecordSetsCommand, { StartRecordName: 'repo.example.com.', StartRecordType: 'A' })
      .resolves({ ResourceRecordSets: [listedAlias], IsTruncated: false, MaxItems: 100 });
    r53
      .on(ListResourceRecordSetsCommand, { StartRecordType: 'AAAA' })
      .resolves({ ResourceRecordSets: [], IsTruncated: false, MaxItems: 100 });
    await state.put(`route53/${ZONE}/m1`, { generation: 0, healthCheckId: 'hc-1', obsoleteHealthCheckIds: [] });
    await registrar().retire({ mirrorId: 'm1', region: 'eu-west-1' });
    expect(r53.commandCalls(ChangeResourceRecordSetsCommand)[0]?.args[0].input).toEqual({
      HostedZoneId: ZONE,
      ChangeBatch: {
        Comment: 'metasync retire m1',
        Changes: [
          { Action: 'DELETE', ResourceRecordSet: listedAlias },
          { Action: 'DELETE', ResourceRecordSet: listedRecord },
        ],
      },
    });
    const calls = order().filter((c) => c !== 'ListResourceRecordSets' && c !== 'ListHealthChecks');
    expect(calls).toEqual(['ChangeResourceRecordSets', 'GetChange', 'GetChange', 'DeleteHealthCheck']);
    expect(r53.commandCalls(DeleteHealthCheckCommand)[0]?.args[0].input).toEqual({ HealthCheckId: 'hc-1' });
    expect(slept).toEqual([500, 60_000 + 10_000 - 500]);
    expect(state.snapshot()[`route53/${ZONE}/m1`]).toEqual({ generation: 1, obsoleteHealthCheckIds: [] });
  });

  it('treats NoSuchHealthCheck on delete as already done', async () => {
    r53.on(ListResourceRecordSetsCommand).resolves({ ResourceRecordSets: [], IsTruncated: false, MaxItems: 100 });
    r53.on(DeleteHealthCheckCommand).rejects(error('NoSuchHealthCheck'));
    await state.put(`route53/${ZONE}/m1`, { generation: 2, healthCheckId: 'hc-1', obsoleteHealthCheckIds: [] });
    await registrar().retire({ mirrorId: 'm1', region: 'eu-west-1' });
    expect(state.snapshot()[`route53/${ZONE}/m1`]).toEqual({ generation: 3, obsoleteHealthCheckIds: [] });
  });

  it('refuses to delete a health check that a record anywhere in the zone still uses (e.g. retire with the wrong region)', async () => {
    const inOtherRegion = { ...listedRecord, Name: 'us-east-1.regions.repo.example.com.' };
    r53.on(ListResourceRecordSetsCommand).resolves({ ResourceRecordSets: [listedAlias, inOtherRegion], IsTruncated: false, MaxItems: 300 });
    r53
      .on(ListResourceRecordSetsCommand, { StartRecordName: REGIONAL })
      .resolves({ ResourceRecordSets: [], IsTruncated: false, MaxItems: 100 });
    await state.put(`route53/${ZONE}/m1`, { generation: 0, healthCheckId: 'hc-1', obsoleteHealthCheckIds: [] });
    await expect(registrar().retire({ mirrorId: 'm1', region: 'eu-west-1' })).rejects.toMatchObject({
      code: 'METASYNC_ERR_DNS_CALL_FAILED',
      message: expect.stringContaining('health check hc-1 is still used by us-east-1.regions.repo.example.com. A m1') as unknown,
    });
    expect(r53.commandCalls(DeleteHealthCheckCommand)).toHaveLength(0);
  });

  it('accepts InvalidChangeBatch on DELETE when a re-list shows the record already gone', async () => {
    r53
      .on(ListResourceRecordSetsCommand, { StartRecordName: REGIONAL, StartRecordType: 'A' })
      .resolvesOnce({
        ResourceRecordSets: [listedRecord, { ...listedRecord, SetIdentifier: 'm2', HealthCheckId: 'hc-9' }],
        IsTruncated: false,
        MaxItems: 100,
      })
      .resolves({
        ResourceRecordSets: [{ ...listedRecord, SetIdentifier: 'm2', HealthCheckId: 'hc-9' }],
        IsTruncated: false,
        MaxItems: 100,
      });
    r53
      .on(ListResourceRecordSetsCommand, { StartRecordType: 'AAAA' })
      .resolves({ ResourceRecordSets: [], IsTruncated: false, MaxItems: 100 });
    r53.on(ChangeResourceRecordSetsCommand).rejects(error('InvalidChangeBatch', 'not found'));
    await registrar().retire({ mirrorId: 'm1', region: 'eu-west-1' });
    expect(r53.commandCalls(DeleteHealthCheckCommand).map((c) => c.args[0].input.HealthCheckId)).toEqual(['hc-1']);
  });

  it('retries Throttling and PriorRequestNotComplete with growing delays', async () => {
    r53.on(ChangeTagsForResourceCommand).rejectsOnce(error('Throttling')).rejectsOnce(error('PriorRequestNotComplete')).resolves({});
    await registrar().register(mirror);
    expect(r53.commandCalls(ChangeTagsForResourceCommand)).toHaveLength(3);
    const [first, second] = slept;
    expect(first).toBeGreaterThanOrEqual(50);
    expect(first).toBeLessThanOrEqual(100);
    expect(second).toBeGreaterThanOrEqual(100);
    expect(second).toBeLessThanOrEqual(200);
  });

  it.each([
    ['CreateHealthCheck', CreateHealthCheckCommand, 'CreateHealthCheck metasync-'],
    ['ChangeTagsForResource', ChangeTagsForResourceCommand, 'ChangeTagsForResource healthcheck hc-1'],
    ['ChangeResourceRecordSets', ChangeResourceRecordSetsCommand, `ChangeResourceRecordSets UPSERT ${REGIONAL} A m1`],
    ['GetChange', GetChangeCommand, 'GetChange /change/C1'],
  ] as const)('turns any other error of %s into METASYNC_ERR_DNS_CALL_FAILED naming the record or check', async (_name, command, named) => {
    r53.on(command as typeof CreateHealthCheckCommand).rejects(error('AccessDenied', 'User is not authorized'));
    const err = await registrar()
      .register(mirror)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'METASYNC_ERR_DNS_CALL_FAILED', details: { awsError: 'AccessDenied' } });
    expect((err as Error).message).toContain(named);
    expect((err as Error).message).toContain('User is not authorized');
  });

  it('lists registered mirrors and flags a check with no record', async () => {
    r53.on(ListHealthChecksCommand).resolves({
      HealthChecks: [
        { Id: 'hc-1', CallerReference: 'metasync-aa', HealthCheckConfig: { Type: 'HTTP' }, HealthCheckVersion: 1 },
        { Id: 'hc-7', CallerReference: 'metasync-bb', HealthCheckConfig: { Type: 'HTTP' }, HealthCheckVersion: 1 },
        { Id: 'foreign', CallerReference: 'someone-else', HealthCheckConfig: { Type: 'HTTP' }, HealthCheckVersion: 1 },
      ],
      Marker: '',
      IsTruncated: false,
      MaxItems: 100,
    });
    r53.on(ListTagsForResourceCommand, { ResourceId: 'hc-7' }).resolves({
      ResourceTagSet: {
        Tags: [
          { Key: 'managed-by', Value: 'metasync' },
          { Key: 'metasync:mirror-id', Value: 'm7' },
        ],
      },
    });
    r53.on(ListTagsForResourceCommand, { ResourceId: 'hc-1' }).resolves({
      ResourceTagSet: {
        Tags: [
          { Key: 'managed-by', Value: 'metasync' },
          { Key: 'metasync:mirror-id', Value: 'm1' },
        ],
      },
    });
    r53.on(ListResourceRecordSetsCommand).resolves({ ResourceRecordSets: [listedAlias, listedRecord], IsTruncated: false, MaxItems: 300 });
    expect(await registrar().list()).toEqual([
      { mirrorId: 'm1', region: 'eu-west-1', address: '192.0.2.11', healthCheckId: 'hc-1', state: 'registered' },
      { mirrorId: 'm7', healthCheckId: 'hc-7', state: 'check-only' },
    ]);
  });
});
