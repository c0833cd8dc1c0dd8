import { Route53Client } from '@aws-sdk/client-route-53';
import type { DnsConfig } from './dns-config.js';
import { createPowerDnsRegistrar } from './powerdns/registrar.js';
import type { Clock, DnsRegistrar } from './registrar.js';
import { createRoute53Registrar } from './route53/registrar.js';
import { createFileStateStore } from './route53/state-file.js';

/**
 * The configured registrar, or undefined for `dns.provider: none`. The Route53
 * client takes credentials from the standard AWS chain only; it retries
 * nothing itself (maxAttempts 1) because the registrar's own retry does,
 * with backoff and a clear error when it gives up.
 */
export function createRegistrar(config: DnsConfig, clock?: Clock): { registrar: DnsRegistrar; close(): void } | undefined {
  const dns = config.dns;
  if (dns.provider === 'route53' && dns.route53 !== undefined) {
    const r53 = dns.route53;
    const client = new Route53Client({
      region: r53.awsRegion,
      maxAttempts: 1,
      ...(r53.endpoint === undefined ? {} : { endpoint: r53.endpoint }),
    });
    const registrar = createRoute53Registrar({
      client,
      hostedZoneId: r53.hostedZoneId,
      serviceName: r53.serviceName,
      ...(r53.regionalSuffix === undefined ? {} : { regionalSuffix: r53.regionalSuffix }),
      ...(r53.insyncTimeoutMs === undefined ? {} : { insyncTimeoutMs: r53.insyncTimeoutMs }),
      ttlS: dns.ttlS,
      drainMarginMs: dns.drainMarginMs,
      state: createFileStateStore(config.stateFile),
      ...(clock === undefined ? {} : { clock }),
    });
    return { registrar, close: () => client.destroy() };
  }
  if (dns.provider === 'powerdns' && dns.powerdns !== undefined) {
    const p = dns.powerdns;
    const registrar = createPowerDnsRegistrar({
      apiUrl: p.apiUrl,
      apiKey: p.apiKey ?? '',
      serverId: p.serverId,
      zone: p.zone,
      serviceName: p.serviceName,
      regionSubnets: p.regionSubnets,
      ttlS: dns.ttlS,
      drainMarginMs: dns.drainMarginMs,
      ...(clock === undefined ? {} : { clock }),
    });
    return { registrar, close: () => undefined };
  }
  return undefined;
}
