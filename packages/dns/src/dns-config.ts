import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { hasErrno, metasyncError } from '@metasync/shared';
import { readSecret } from '@metasync/shared/daemon';

/**
 * What a registrar needs, and nothing else: the `dns` section of the metasync
 * JSON config file (METASYNC_CONFIG) with its METASYNC_* environment overrides,
 * the PowerDNS API key, and the Route53 state file. The operator CLI parses the
 * rest of that file itself (infra/src/cli-config.ts); a self-registering mirror
 * reads only this part (`loadDnsConfig`). AWS credentials never appear here:
 * the Route53 client uses the standard AWS chain (env, profile, SSO, instance role).
 */
const httpUrl = z.string().refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL');

const route53Schema = z.object({
  hostedZoneId: z.string().min(1),
  serviceName: z.string().min(1),
  regionalSuffix: z.string().optional(),
  /** Only for S3/Route53-compatible fakes and tests; real AWS needs none. */
  endpoint: httpUrl.optional(),
  awsRegion: z.string().default('us-east-1'),
  stateFile: z.string().optional(),
  insyncTimeoutMs: z.number().int().positive().optional(),
});

const powerdnsSchema = z.object({
  apiUrl: httpUrl,
  serverId: z.string().default('localhost'),
  zone: z.string().min(1),
  serviceName: z.string().min(1),
  apiKey: z.string().optional(),
  apiKeyFile: z.string().optional(),
  /** Client subnets (ECS or resolver address) per region, for region preference. */
  regionSubnets: z.record(z.string(), z.array(z.string())).default({}),
  /** Seconds between pdns's health checks of each freshness URL. */
  checkIntervalS: z.number().int().positive().optional(),
});

/** The config file's `dns` object. */
export const dnsSectionSchema = z
  .object({
    provider: z.enum(['route53', 'powerdns', 'none']).default('none'),
    ttlS: z.number().int().min(1).max(60).default(60),
    drainMarginMs: z.number().int().nonnegative().default(10_000),
    route53: route53Schema.optional(),
    powerdns: powerdnsSchema.optional(),
  })
  .default({ provider: 'none', ttlS: 60, drainMarginMs: 10_000 });
export type DnsSection = z.infer<typeof dnsSectionSchema>;

/** A registrar's settings: the validated `dns` section (API key resolved) and the Route53 state file. */
export interface DnsConfig {
  dns: DnsSection;
  stateFile: string;
}

/** Environment twins of the `dns` section's fields (env wins over the file). */
export const DNS_ENV = {
  METASYNC_DNS_PROVIDER: 'route53 | powerdns | none (dns.provider)',
  METASYNC_DNS_TTL_S: 'answer TTL, at most 60 (dns.ttlS)',
  METASYNC_DNS_DRAIN_MARGIN_MS: 'wait after one TTL before a mirror stops (dns.drainMarginMs)',
  METASYNC_DNS_STATE_FILE: 'local DNS state file',
  METASYNC_ROUTE53_ZONE_ID: 'hosted zone id (dns.route53.hostedZoneId)',
  METASYNC_ROUTE53_SERVICE_NAME: 'name clients resolve (dns.route53.serviceName)',
  METASYNC_ROUTE53_ENDPOINT: 'endpoint override, for tests against a fake (dns.route53.endpoint)',
  METASYNC_PDNS_API_URL: 'PowerDNS API base URL (dns.powerdns.apiUrl)',
  METASYNC_PDNS_API_KEY: 'PowerDNS API key (secret; or METASYNC_PDNS_API_KEY_FILE)',
  METASYNC_PDNS_API_KEY_FILE: 'file holding the PowerDNS API key',
} as const;

/** The metasync JSON config file, unvalidated; `{}` when no path is given. */
export function readConfigFile(path: string | undefined): unknown {
  if (path === undefined || path === '') return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `config file ${path} does not exist`, { path });
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `config file ${path} is not valid JSON: ${(err as Error).message}`, { path }, err);
  }
}

/** A copy of the file's raw `dns` section with the METASYNC_* overrides applied (empty values are ignored). */
export function mergeDnsEnv(section: unknown, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const dns = ((structuredClone(section) as Record<string, unknown> | undefined) ?? {}) as Record<string, unknown>;
  const set = (target: Record<string, unknown>, key: string, value: unknown): void => {
    if (value !== undefined && value !== '') target[key] = value;
  };
  set(dns, 'provider', env.METASYNC_DNS_PROVIDER);
  if (env.METASYNC_DNS_TTL_S !== undefined) set(dns, 'ttlS', Number(env.METASYNC_DNS_TTL_S));
  if (env.METASYNC_DNS_DRAIN_MARGIN_MS !== undefined) set(dns, 'drainMarginMs', Number(env.METASYNC_DNS_DRAIN_MARGIN_MS));
  if (
    env.METASYNC_ROUTE53_ZONE_ID !== undefined ||
    env.METASYNC_ROUTE53_SERVICE_NAME !== undefined ||
    env.METASYNC_ROUTE53_ENDPOINT !== undefined
  ) {
    const r53 = ((dns.route53 as Record<string, unknown> | undefined) ?? {}) as Record<string, unknown>;
    set(r53, 'hostedZoneId', env.METASYNC_ROUTE53_ZONE_ID);
    set(r53, 'serviceName', env.METASYNC_ROUTE53_SERVICE_NAME);
    set(r53, 'endpoint', env.METASYNC_ROUTE53_ENDPOINT);
    dns.route53 = r53;
  }
  if (env.METASYNC_PDNS_API_URL !== undefined) {
    const pdns = ((dns.powerdns as Record<string, unknown> | undefined) ?? {}) as Record<string, unknown>;
    set(pdns, 'apiUrl', env.METASYNC_PDNS_API_URL);
    dns.powerdns = pdns;
  }
  return dns;
}

/**
 * Checks a validated section against its provider, reads the PowerDNS API key
 * (env, else the file it names), and picks the state file: METASYNC_DNS_STATE_FILE,
 * else the caller's default (the CLI's and the mirror's differ).
 */
export function completeDnsConfig(dns: DnsSection, env: NodeJS.ProcessEnv, options: { defaultStateFile: string }): DnsConfig {
  if (dns.provider === 'route53' && dns.route53 === undefined) {
    throw metasyncError(
      'METASYNC_ERR_CONFIG_INVALID',
      'metasync config: dns.provider is route53 but dns.route53 (hostedZoneId, serviceName) is missing',
      {},
    );
  }
  if (dns.provider === 'powerdns') {
    if (dns.powerdns === undefined)
      throw metasyncError('METASYNC_ERR_CONFIG_INVALID', 'metasync config: dns.provider is powerdns but dns.powerdns is missing', {});
    const apiKey = readSecret(
      env.METASYNC_PDNS_API_KEY ?? dns.powerdns.apiKey,
      env.METASYNC_PDNS_API_KEY_FILE ?? dns.powerdns.apiKeyFile,
      env.METASYNC_PDNS_API_KEY_FILE === undefined ? 'metasync config: dns.powerdns.apiKeyFile' : 'METASYNC_PDNS_API_KEY_FILE',
    );
    if (apiKey === undefined)
      throw metasyncError(
        'METASYNC_ERR_CONFIG_INVALID',
        'metasync config: the PowerDNS API key is missing (METASYNC_PDNS_API_KEY or _FILE)',
        {},
      );
    dns.powerdns.apiKey = apiKey;
  }
  return { dns, stateFile: env.METASYNC_DNS_STATE_FILE ?? options.defaultStateFile };
}

/** Every zod issue in one message, paths from the file's root (`dns.ttlS`). */
function configIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
}

/**
 * The registrar settings alone: only the `dns` section of METASYNC_CONFIG (if
 * set) is read, so the rest of the operator's file (mirrors, tokens) is neither
 * parsed nor required. Pure apart from reading the named files.
 */
export function loadDnsConfig(input: { env: NodeJS.ProcessEnv; defaultStateFile: string }): DnsConfig {
  const { env } = input;
  const raw = readConfigFile(env.METASYNC_CONFIG) as Record<string, unknown>;
  const parsed = z.object({ dns: dnsSectionSchema }).safeParse({ dns: mergeDnsEnv(raw.dns, env) });
  if (!parsed.success) throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `metasync config: ${configIssues(parsed.error.issues)}`, {});
  return completeDnsConfig(parsed.data.dns, env, { defaultStateFile: input.defaultStateFile });
}
