import { randomUUID } from 'node:crypto';

/** An error the fake answers in Route53's ErrorResponse shape. */
export class FakeRoute53Error extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface FakeRecordSet {
  Name: string;
  Type: string;
  SetIdentifier?: string;
  Weight?: number;
  Region?: string;
  Failover?: string;
  MultiValueAnswer?: boolean;
  TTL?: number;
  ResourceRecords?: { Value: string }[];
  AliasTarget?: { HostedZoneId: string; DNSName: string; EvaluateTargetHealth: boolean };
  HealthCheckId?: string;
}

export interface FakeChange {
  Action: 'CREATE' | 'DELETE' | 'UPSERT';
  ResourceRecordSet: FakeRecordSet;
}

export interface FakeHealthCheck {
  Id: string;
  CallerReference: string;
  /** As parsed from the request; compared as canonical JSON for CallerReference reuse. */
  HealthCheckConfig: Record<string, unknown>;
  HealthCheckVersion: number;
}

export interface FakeZone {
  id: string;
  name: string;
  records: FakeRecordSet[];
}

export function absolute(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower : `${lower}.`;
}

/** Key order-independent JSON, for exact-match comparisons. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const identity = (set: FakeRecordSet): string => `${set.Name}|${set.Type}|${set.SetIdentifier ?? ''}`;
const describe = (set: FakeRecordSet): string =>
  `[name='${set.Name}', type='${set.Type}'${set.SetIdentifier === undefined ? '' : `, set-identifier='${set.SetIdentifier}'`}]`;

/** Route53 orders record sets by name with its labels reversed, then type, then set identifier. */
export function recordOrderKey(name: string, type: string, setIdentifier = ''): string {
  return `${absolute(name).split('.').reverse().join('.')}\u0000${type}\u0000${setIdentifier}`;
}

/**
 * Applies one change batch to a copy of the zone and validates the result;
 * the caller swaps it in only if this returns (all-or-nothing).
 */
export function applyBatch(zone: FakeZone, changes: readonly FakeChange[], healthCheckExists: (id: string) => boolean): FakeRecordSet[] {
  const records = zone.records.map((set) => structuredClone(set));
  const problems: string[] = [];
  for (const change of changes) {
    const set = change.ResourceRecordSet;
    if (set.Name !== zone.name && !set.Name.endsWith(`.${zone.name}`)) {
      problems.push(`RRSet with DNS name ${set.Name} is not permitted in zone ${zone.name}`);
      continue;
    }
    const index = records.findIndex((existing) => identity(existing) === identity(set));
    if (change.Action === 'CREATE') {
      if (index >= 0) problems.push(`Tried to create resource record set ${describe(set)} but it already exists`);
      else records.push(set);
    } else if (change.Action === 'DELETE') {
      if (index < 0) problems.push(`Tried to delete resource record set ${describe(set)} but it was not found`);
      else if (canonical(records[index]) !== canonical(set))
        problems.push(`Tried to delete resource record set ${describe(set)} but the values provided do not match the current values`);
      else records.splice(index, 1);
    } else if (index >= 0) records[index] = set;
    else records.push(set);
  }
  if (problems.length === 0) problems.push(...validateZone(zone, records, healthCheckExists));
  if (problems.length > 0) throw new FakeRoute53Error('InvalidChangeBatch', 400, problems.join('; '));
  return records;
}

function validateZone(zone: FakeZone, records: readonly FakeRecordSet[], healthCheckExists: (id: string) => boolean): string[] {
  const problems: string[] = [];
  const byNameType = new Map<string, FakeRecordSet[]>();
  for (const set of records) {
    const key = `${set.Name}|${set.Type}`;
    byNameType.set(key, [...(byNameType.get(key) ?? []), set]);
    const hasValues = set.TTL !== undefined && (set.ResourceRecords?.length ?? 0) > 0;
    if (hasValues === (set.AliasTarget !== undefined)) {
      problems.push(`Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords]] for ${describe(set)}`);
    }
    if (set.TTL !== undefined && (set.TTL < 0 || set.TTL > 2147483647)) problems.push(`TTL out of range for ${describe(set)}`);
    if (set.HealthCheckId !== undefined && !healthCheckExists(set.HealthCheckId)) {
      problems.push(`The health check ${set.HealthCheckId} referenced by ${describe(set)} does not exist`);
    }
    if (set.AliasTarget !== undefined) {
      const target = absolute(set.AliasTarget.DNSName);
      if (set.AliasTarget.HostedZoneId !== zone.id) continue;
      if (!records.some((other) => other.Name === target && other.Type === set.Type)) {
        problems.push(
          `Tried to create an alias that targets ${target}, type ${set.Type} in zone ${zone.id}, but that target was not found`,
        );
      }
    }
  }
  for (const sets of byNameType.values()) {
    const first = sets[0]!;
    const withId = sets.filter((set) => set.SetIdentifier !== undefined);
    if (withId.length > 0 && withId.length !== sets.length) {
      problems.push(
        `RRSet ${describe(first)} mixes routing policies: a record without SetIdentifier cannot share a name and type with others`,
      );
    }
    if (withId.length === 0 && sets.length > 1) problems.push(`Duplicate RRSet ${describe(first)}`);
    const policy = (set: FakeRecordSet): string =>
      set.Region !== undefined
        ? 'latency'
        : set.Weight !== undefined
          ? 'weighted'
          : set.MultiValueAnswer === true
            ? 'multivalue'
            : set.Failover !== undefined
              ? 'failover'
              : 'none';
    if (new Set(withId.map(policy)).size > 1) problems.push(`RRSet ${describe(first)} mixes routing policies`);
    if (withId.some((set) => policy(set) === 'none')) problems.push(`RRSet ${describe(first)} has a SetIdentifier but no routing policy`);
    const regions = withId.filter((set) => set.Region !== undefined).map((set) => set.Region!);
    const duplicate = regions.find((region, i) => regions.indexOf(region) !== i);
    if (duplicate !== undefined)
      problems.push(`Only one latency record per region is allowed: ${first.Name} ${first.Type} has two in ${duplicate}`);
  }
  return problems;
}

export function newChangeId(): string {
  return `C${randomUUID().replace(/-/g, '').slice(0, 13).toUpperCase()}`;
}
