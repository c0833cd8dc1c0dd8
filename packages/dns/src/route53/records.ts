import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { HealthCheckConfig, ResourceRecordSet, RRType } from '@aws-sdk/client-route-53';
import { metasyncError } from '@metasync/shared';
import type { MirrorEndpoint } from '../registrar.js';

/** Prefix of every CallerReference we create, so `list` can spot our checks even before they are tagged. */
export const CALLER_REFERENCE_PREFIX = 'metasync-';
export const TAG_MANAGED_BY = 'managed-by';
export const TAG_MANAGED_BY_VALUE = 'metasync';
export const TAG_MIRROR_ID = 'metasync:mirror-id';
export const TAG_REGION = 'metasync:region';
/** What a healthy freshness body starts with. */
export const HEALTHY_BODY = 'fresh';

/**
 * Deterministic CallerReference: the same (zone, regional name, mirror,
 * generation) always gives the same string, so a CreateHealthCheck retried
 * after a crash returns the existing check instead of making a second one.
 * The generation moves on after a retire, because Route53 refuses a
 * CallerReference that a deleted check used.
 */
export function deriveCallerReference(input: { hostedZoneId: string; regionalName: string; mirrorId: string; generation: number }): string {
  const digest = createHash('sha256')
    .update(`${input.hostedZoneId}\n${input.regionalName}\n${input.mirrorId}\n${input.generation}`)
    .digest('hex');
  return `${CALLER_REFERENCE_PREFIX}${digest.slice(0, 40)}`;
}

export function recordTypeFor(address: string): RRType {
  const family = isIP(address);
  if (family === 4) return 'A';
  if (family === 6) return 'AAAA';
  throw metasyncError('METASYNC_ERR_DNS_CALL_FAILED', `mirror address must be an IPv4 or IPv6 address, got ${JSON.stringify(address)}`, {
    address,
  });
}

export interface HealthCheckTuning {
  /** Seconds between checks by each checker: 10 (fast) or 30. */
  requestIntervalS: 10 | 30;
  failureThreshold: number;
}

/** An HTTP(S) string-match check on the mirror's freshness URL. */
export function healthCheckConfigFor(healthUrl: string, tuning: HealthCheckTuning): HealthCheckConfig {
  let url: URL;
  try {
    url = new URL(healthUrl);
  } catch (err) {
    throw metasyncError('METASYNC_ERR_DNS_CALL_FAILED', `health URL is not a URL: ${JSON.stringify(healthUrl)}`, { healthUrl }, err);
  }
  const https = url.protocol === 'https:';
  if (!https && url.protocol !== 'http:') {
    throw metasyncError('METASYNC_ERR_DNS_CALL_FAILED', `health URL must be http or https, got ${healthUrl}`, { healthUrl });
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const config: HealthCheckConfig = {
    Type: https ? 'HTTPS_STR_MATCH' : 'HTTP_STR_MATCH',
    Port: url.port === '' ? (https ? 443 : 80) : Number(url.port),
    ResourcePath: `${url.pathname}${url.search}`,
    SearchString: HEALTHY_BODY,
    RequestInterval: tuning.requestIntervalS,
    FailureThreshold: tuning.failureThreshold,
  };
  if (isIP(host) !== 0) config.IPAddress = host;
  else config.FullyQualifiedDomainName = host;
  if (https && isIP(host) === 0) config.EnableSNI = true;
  return config;
}

/** The mirror's own answer on the regional name: multivalue, with its own health check. */
export function mirrorRecordSet(input: {
  regionalName: string;
  mirror: MirrorEndpoint;
  ttlS: number;
  healthCheckId: string;
}): ResourceRecordSet {
  return {
    Name: input.regionalName,
    Type: recordTypeFor(input.mirror.address),
    SetIdentifier: input.mirror.mirrorId,
    MultiValueAnswer: true,
    TTL: input.ttlS,
    ResourceRecords: [{ Value: input.mirror.address }],
    HealthCheckId: input.healthCheckId,
  };
}

/** The region's one latency record on the service name, aliasing the regional name. */
export function latencyAliasRecordSet(input: {
  serviceName: string;
  regionalName: string;
  region: string;
  type: RRType;
  hostedZoneId: string;
}): ResourceRecordSet {
  return {
    Name: input.serviceName,
    Type: input.type,
    SetIdentifier: input.region,
    Region: input.region as ResourceRecordSet['Region'],
    AliasTarget: { HostedZoneId: input.hostedZoneId, DNSName: input.regionalName, EvaluateTargetHealth: true },
  };
}
