import { absolute, type FakeRecordSet } from './store.js';
import type { XmlObject, XmlValue } from './xml.js';

/** Record sets between the parsed request XML and the fake's model. */
export const text = (value: XmlValue | undefined): string | undefined => (typeof value === 'string' ? value : undefined);
export const obj = (value: XmlValue | undefined): XmlObject | undefined =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined;
export const list = (value: XmlValue | undefined): XmlObject[] =>
  Array.isArray(value) ? (value.filter((v) => obj(v) !== undefined) as XmlObject[]) : [];
export const num = (value: XmlValue | undefined): number | undefined => (text(value) === undefined ? undefined : Number(text(value)));

export function recordFromXml(x: XmlObject): FakeRecordSet {
  const set: FakeRecordSet = { Name: absolute(text(x.Name) ?? ''), Type: text(x.Type) ?? '' };
  if (text(x.SetIdentifier) !== undefined) set.SetIdentifier = text(x.SetIdentifier)!;
  if (num(x.Weight) !== undefined) set.Weight = num(x.Weight)!;
  if (text(x.Region) !== undefined) set.Region = text(x.Region)!;
  if (text(x.Failover) !== undefined) set.Failover = text(x.Failover)!;
  if (text(x.MultiValueAnswer) !== undefined) set.MultiValueAnswer = text(x.MultiValueAnswer) === 'true';
  if (num(x.TTL) !== undefined) set.TTL = num(x.TTL)!;
  const values = list(obj(x.ResourceRecords)?.ResourceRecord);
  if (values.length > 0) set.ResourceRecords = values.map((r) => ({ Value: text(r.Value) ?? '' }));
  const alias = obj(x.AliasTarget);
  if (alias !== undefined) {
    set.AliasTarget = {
      HostedZoneId: text(alias.HostedZoneId) ?? '',
      DNSName: absolute(text(alias.DNSName) ?? ''),
      EvaluateTargetHealth: text(alias.EvaluateTargetHealth) === 'true',
    };
  }
  if (text(x.HealthCheckId) !== undefined) set.HealthCheckId = text(x.HealthCheckId)!;
  return set;
}

export function recordToXml(set: FakeRecordSet): Record<string, unknown> {
  return {
    Name: set.Name,
    Type: set.Type,
    SetIdentifier: set.SetIdentifier,
    Weight: set.Weight,
    Region: set.Region,
    Failover: set.Failover,
    MultiValueAnswer: set.MultiValueAnswer,
    TTL: set.TTL,
    ResourceRecords: set.ResourceRecords === undefined ? undefined : { ResourceRecord: set.ResourceRecords },
    AliasTarget: set.AliasTarget,
    HealthCheckId: set.HealthCheckId,
  };
}
