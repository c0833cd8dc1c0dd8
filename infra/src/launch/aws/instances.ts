import { DescribeInstancesCommand, type EC2Client, type Filter, type Instance } from '@aws-sdk/client-ec2';
import type { LaunchedServer } from '../launcher.js';
import { ec2Call } from './ec2-call.js';

/** Tags every instance the launcher creates carries from its first moment (RunInstances' TagSpecifications). */
export const TAGS = {
  managedBy: 'managed-by',
  mirrorId: 'mirror-id',
  release: 'metasync:release',
} as const;
export const MANAGED_BY_VALUE = 'metasync';

/** Instance states that still are (or will be) a server; shutting-down and terminated are on their way out. */
export const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped'] as const;
/** Everything but terminated: what destroy() must still terminate or wait for. */
export const NOT_TERMINATED_STATES = [...LIVE_STATES, 'shutting-down'] as const;

/** DescribeInstances pages are bounded so a runaway NextToken cannot loop forever. */
const MAX_PAGES = 100;

export function managedFilters(input: { mirrorId?: string | undefined; states: readonly string[] }): Filter[] {
  return [
    { Name: `tag:${TAGS.managedBy}`, Values: [MANAGED_BY_VALUE] },
    ...(input.mirrorId === undefined ? [] : [{ Name: `tag:${TAGS.mirrorId}`, Values: [input.mirrorId] }]),
    { Name: 'instance-state-name', Values: [...input.states] },
  ];
}

/** All instances matching the filters or ids, across pages. */
export async function describeInstances(
  client: EC2Client,
  input: { filters?: Filter[]; instanceIds?: string[]; what: string; region: string; passThrough?: readonly string[] },
): Promise<Instance[]> {
  const instances: Instance[] = [];
  let nextToken: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const out = await ec2Call(
      {
        what: `DescribeInstances (${input.what})`,
        details: { region: input.region, instanceIds: input.instanceIds },
        ...(input.passThrough === undefined ? {} : { passThrough: input.passThrough }),
      },
      () =>
        client.send(
          new DescribeInstancesCommand({
            ...(input.filters === undefined ? {} : { Filters: input.filters }),
            ...(input.instanceIds === undefined ? {} : { InstanceIds: input.instanceIds }),
            ...(nextToken === undefined ? {} : { NextToken: nextToken }),
          }),
        ),
    );
    for (const reservation of out.Reservations ?? []) instances.push(...(reservation.Instances ?? []));
    nextToken = out.NextToken === '' ? undefined : out.NextToken;
    if (nextToken === undefined) return instances;
  }
  return instances;
}

export function tagOf(instance: Instance, key: string): string | undefined {
  return instance.Tags?.find((tag) => tag.Key === key)?.Value;
}

/** The address DNS will carry, once EC2 has assigned it ('' before). */
export function addressOf(instance: Instance, addressType: 'public' | 'private'): string {
  return (addressType === 'public' ? instance.PublicIpAddress : instance.PrivateIpAddress) ?? '';
}

const STATE_OF: Record<string, LaunchedServer['state']> = {
  pending: 'pending',
  running: 'running',
  stopping: 'stopping',
  'shutting-down': 'stopping',
  stopped: 'stopped',
  terminated: 'stopped',
};

/**
 * The launcher's view of an instance. The mirror serves HTTPS on 443 at its
 * address (cloud-init's METASYNC_PUBLIC_URL is `https://<ip>`), so that is
 * the URL the CLI probes; url and address are '' until EC2 assigns one.
 */
export function toLaunchedServer(instance: Instance, input: { region: string; addressType: 'public' | 'private' }): LaunchedServer {
  const address = addressOf(instance, input.addressType);
  const url = address === '' ? '' : `https://${address}`;
  return {
    mirrorId: tagOf(instance, TAGS.mirrorId) ?? '',
    region: input.region,
    serverId: instance.InstanceId ?? '',
    releaseVersion: tagOf(instance, TAGS.release) ?? '',
    url,
    healthUrl: url === '' ? '' : `${url}/health/fresh`,
    address,
    state: STATE_OF[instance.State?.Name ?? 'pending'] ?? 'pending',
  };
}
