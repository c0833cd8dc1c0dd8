import type { DnsConfig } from './dns-config.js';
import type { Clock, DnsRegistrar } from './registrar.js';
export type { DnsRegistrar, MirrorEndpoint } from './registrar.js';

/**
 * The configured registrar, or undefined for `dns.provider: none`. The Route53
 * client takes credentials from the standard AWS chain only; it retries
 * nothing itself (maxAttempts 1) because the registrar's own retry does,
 * with backoff and a clear error when it gives up.
 *
 * Each provider's code is loaded only when configured (this module is `@metasync/dns/registrar`, apart from
 * the package's index): the AWS SDK cost a mirror without Route53 6 MB of heap and about 30 MB of RSS.
 */
export async function createRegistrar(config: DnsConfig, clock?: Clock): Promise<{ registrar: DnsRegistrar; close(): void } | undefined> {
  const dns = config.dns;
  if (dns.provider === 'route53' && dns.route53 !== undefined) {
    const [{ Route53Client }, { createRoute53Registrar }, { createFileStateStore }] = await Promise.all([
      import('@aws-sdk/client-route-53'),
      import('./route53/registrar.js'),
      import('./route53/state-file.js'),
    ]);
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
    const { createPowerDnsRegistrar } = await import('./powerdns/registrar.js');
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
