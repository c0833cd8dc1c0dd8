import { randomBytes } from 'node:crypto';
import { items, str, strings, tree, type QueryTree } from './query.js';

export class FakeEc2Error extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export type FakeState = 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped';
const STATE_CODES: Record<FakeState, number> = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80 };

export interface FakeInstance {
  id: string;
  region: string;
  reservationId: string;
  imageId: string;
  instanceType: string;
  subnetId: string;
  securityGroupIds: string[];
  instanceProfile: string;
  clientToken: string;
  /** Decoded user data. */
  userData: string;
  associatePublicIp: boolean;
  tags: Map<string, string>;
  state: FakeState;
  /** DescribeInstances calls in its region since it entered its current state. */
  pollsInState: number;
  privateIp: string;
  publicIp?: string | undefined;
  launchTime: string;
  stateReason?: { code: string; message: string } | undefined;
  /** Filtered DescribeInstances calls still blind to it (EC2's eventual consistency). */
  hiddenFromFilters: number;
}

export interface StoreOptions {
  /** pending -> running after this many DescribeInstances calls in its region (default 2). */
  runningAfterPolls: number;
  /** shutting-down -> terminated likewise (default 2). */
  terminatedAfterPolls: number;
  /** A new instance is missing from this many filtered DescribeInstances calls (default 0). */
  invisibleToFiltersFor: number;
  /** When set, instances of these AMIs go pending -> terminated with this reason instead of running. */
  failingImages: Map<string, { code: string; message: string }>;
  /** Known instance profile names or ARNs; undefined accepts any. */
  instanceProfiles?: Set<string> | undefined;
}

const MAX_USER_DATA_BYTES = 16 * 1024;

export function createStore(options: StoreOptions) {
  const instances = new Map<string, FakeInstance>();
  /** Every ClientToken ever used, per region: the request it came with and its reservation. */
  const tokens = new Map<string, { params: string; instanceId: string }>();
  let nextIp = 10;

  const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
  const setState = (instance: FakeInstance, state: FakeState): void => {
    instance.state = state;
    instance.pollsInState = 0;
  };
  const instanceOf = (region: string, id: string): FakeInstance => {
    const instance = instances.get(id);
    if (instance === undefined || instance.region !== region)
      throw new FakeEc2Error('InvalidInstanceID.NotFound', 400, `The instance ID '${id}' does not exist`);
    return instance;
  };

  /**
   * Time in the fake moves with polls: each DescribeInstances in a region is one
   * tick for every instance there, and an instance leaves pending (or
   * shutting-down) after the configured number of ticks in that state.
   */
  const tick = (instance: FakeInstance): void => {
    if (instance.state === 'pending' && instance.pollsInState >= options.runningAfterPolls) {
      const failure = options.failingImages.get(instance.imageId);
      if (failure !== undefined) {
        instance.stateReason = failure;
        setState(instance, 'terminated');
        return;
      }
      if (instance.associatePublicIp) instance.publicIp = `198.51.100.${nextIp++}`;
      setState(instance, 'running');
    } else if (instance.state === 'shutting-down' && instance.pollsInState >= options.terminatedAfterPolls) {
      instance.publicIp = undefined;
      setState(instance, 'terminated');
    } else {
      instance.pollsInState += 1;
    }
  };

  const runInstances = (region: string, q: QueryTree): FakeInstance => {
    for (const name of ['ImageId', 'InstanceType', 'MinCount', 'MaxCount'])
      if (str(q[name]) === undefined) throw new FakeEc2Error('MissingParameter', 400, `The request must contain the parameter ${name}`);
    if (str(q.MinCount) !== '1' || str(q.MaxCount) !== '1')
      throw new FakeEc2Error('InvalidParameterValue', 400, 'the fake launches one instance per call');
    const clientToken = str(q.ClientToken) ?? '';
    if (clientToken.length > 64) throw new FakeEc2Error('InvalidParameterValue', 400, 'ClientToken must be at most 64 characters');
    const { ClientToken: _token, Action: _action, Version: _version, ...params } = q;
    const canonical = JSON.stringify(params);
    const used = clientToken === '' ? undefined : tokens.get(`${region}\0${clientToken}`);
    if (used !== undefined) {
      // Same token, same request: the same reservation, in its current state (EC2's documented idempotency).
      if (used.params !== canonical)
        throw new FakeEc2Error(
          'IdempotentParameterMismatch',
          400,
          'Arguments on this idempotent request are inconsistent with arguments used in previous request(s).',
        );
      return instances.get(used.instanceId)!;
    }
    const userDataB64 = str(q.UserData) ?? '';
    const userData = Buffer.from(userDataB64, 'base64');
    if (userData.toString('base64') !== userDataB64)
      throw new FakeEc2Error('InvalidParameterValue', 400, 'Invalid BASE64 encoding of user data.');
    if (userData.length > MAX_USER_DATA_BYTES)
      throw new FakeEc2Error('InvalidParameterValue', 400, `User data is limited to ${MAX_USER_DATA_BYTES} bytes`);
    const profile = tree(q.IamInstanceProfile);
    const instanceProfile = str(profile?.Name) ?? str(profile?.Arn) ?? '';
    if (options.instanceProfiles !== undefined && !options.instanceProfiles.has(instanceProfile))
      throw new FakeEc2Error(
        'InvalidParameterValue',
        400,
        `Value (${instanceProfile}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name`,
      );
    const nic = tree(items(q.NetworkInterface)[0]);
    const tags = new Map<string, string>();
    for (const spec of items(q.TagSpecification).map(tree)) {
      if (str(spec?.ResourceType) !== 'instance') continue;
      for (const tag of items(spec?.Tag).map(tree)) tags.set(str(tag?.Key) ?? '', str(tag?.Value) ?? '');
    }
    const instance: FakeInstance = {
      id: `i-${hex(8).slice(0, 17)}`,
      region,
      reservationId: `r-${hex(8).slice(0, 17)}`,
      imageId: str(q.ImageId)!,
      instanceType: str(q.InstanceType)!,
      subnetId: str(nic?.SubnetId) ?? str(q.SubnetId) ?? '',
      securityGroupIds: nic === undefined ? strings(q.SecurityGroupId) : strings(nic.SecurityGroupId),
      instanceProfile,
      clientToken,
      userData: userData.toString('utf8'),
      associatePublicIp: str(nic?.AssociatePublicIpAddress) === 'true',
      tags,
      state: 'pending',
      pollsInState: 0,
      privateIp: `10.0.0.${nextIp++}`,
      launchTime: new Date().toISOString(),
      hiddenFromFilters: options.invisibleToFiltersFor,
    };
    instances.set(instance.id, instance);
    if (clientToken !== '') tokens.set(`${region}\0${clientToken}`, { params: canonical, instanceId: instance.id });
    return instance;
  };

  const matches = (instance: FakeInstance, filter: { name: string; values: string[] }): boolean => {
    if (filter.name === 'instance-state-name') return filter.values.includes(instance.state);
    if (filter.name === 'client-token') return filter.values.includes(instance.clientToken);
    if (filter.name.startsWith('tag:')) {
      const value = instance.tags.get(filter.name.slice(4));
      return value !== undefined && filter.values.includes(value);
    }
    return false;
  };

  const describeInstances = (region: string, q: QueryTree): FakeInstance[] => {
    const ids = strings(q.InstanceId);
    for (const instance of instances.values()) if (instance.region === region) tick(instance);
    const filters = items(q.Filter)
      .map(tree)
      .map((f) => ({ name: str(f?.Name) ?? '', values: strings(f?.Value) }));
    const unknown = filters.find((f) => !['instance-state-name', 'client-token'].includes(f.name) && !f.name.startsWith('tag:'));
    if (unknown !== undefined) throw new FakeEc2Error('InvalidParameterValue', 400, `The filter '${unknown.name}' is invalid`);
    let found: FakeInstance[];
    if (ids.length > 0) found = ids.map((id) => instanceOf(region, id));
    else {
      found = [...instances.values()].filter((instance) => {
        if (instance.region !== region) return false;
        if (instance.hiddenFromFilters > 0) {
          instance.hiddenFromFilters -= 1;
          return false;
        }
        return true;
      });
    }
    return found.filter((instance) => filters.every((filter) => matches(instance, filter)));
  };

  const terminateInstances = (region: string, q: QueryTree): { instance: FakeInstance; previous: FakeState }[] => {
    const targets = strings(q.InstanceId).map((id) => instanceOf(region, id));
    return targets.map((instance) => {
      const previous = instance.state;
      if (previous !== 'terminated' && previous !== 'shutting-down') setState(instance, 'shutting-down');
      return { instance, previous };
    });
  };

  const createTags = (region: string, q: QueryTree): void => {
    const targets = strings(q.ResourceId).map((id) => instanceOf(region, id));
    for (const instance of targets) for (const tag of items(q.Tag).map(tree)) instance.tags.set(str(tag?.Key) ?? '', str(tag?.Value) ?? '');
  };

  const toXmlShape = (instance: FakeInstance): Record<string, unknown> => ({
    instanceId: instance.id,
    imageId: instance.imageId,
    instanceState: { code: STATE_CODES[instance.state], name: instance.state },
    privateDnsName: `ip-${instance.privateIp.replace(/\./g, '-')}.${instance.region}.compute.internal`,
    amiLaunchIndex: 0,
    instanceType: instance.instanceType,
    launchTime: instance.launchTime,
    placement: { availabilityZone: `${instance.region}a` },
    subnetId: instance.subnetId,
    privateIpAddress: instance.privateIp,
    ipAddress: instance.publicIp,
    groupSet: instance.securityGroupIds.map((groupId) => ({ groupId })),
    iamInstanceProfile: instance.instanceProfile === '' ? undefined : { arn: instance.instanceProfile, id: 'AIPAFAKE' },
    clientToken: instance.clientToken,
    stateReason: instance.stateReason,
    tagSet: [...instance.tags].map(([key, value]) => ({ key, value })),
  });

  return {
    instances,
    runInstances,
    describeInstances,
    terminateInstances,
    createTags,
    toXmlShape,
    stateCode: (s: FakeState) => STATE_CODES[s],
  };
}
