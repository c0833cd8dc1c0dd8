import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { hasErrno, metasyncError, readSecret } from '@metasync/shared';

/**
 * The operator CLI's config: a JSON file (`--config` / METASYNC_CONFIG) plus
 * METASYNC_* environment overrides. AWS credentials never appear here: the
 * Route53 client uses the standard AWS chain (env, profile, SSO, instance role).
 */
const httpUrl = z.string().refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL');

const mirrorSchema = z.object({
  /** Base URL the CLI reaches the mirror on. */
  url: httpUrl,
  region: z.string().regex(/^[a-z0-9-]{1,32}$/, 'must be 1-32 of [a-z0-9-]'),
  /** The address DNS answers carry (default: the URL's host when it is an IP). */
  address: z.string().optional(),
  /** What DNS health checks fetch (default: `<url>/health/fresh`). */
  healthUrl: httpUrl.optional(),
  /** Shell command that stops the mirror (systemctl stop ..., or a kill in tests). */
  stopCommand: z.string().optional(),
  /** Local data dir, for `verify` to hash the objects on disk. */
  dataDir: z.string().optional(),
});
export type MirrorConfig = z.infer<typeof mirrorSchema>;

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

const fileSchema = z.object({
  primary: httpUrl.optional(),
  dns: z
    .object({
      provider: z.enum(['route53', 'powerdns', 'none']).default('none'),
      ttlS: z.number().int().min(1).max(60).default(60),
      drainMarginMs: z.number().int().nonnegative().default(10_000),
      route53: route53Schema.optional(),
      powerdns: powerdnsSchema.optional(),
    })
    .default({ provider: 'none', ttlS: 60, drainMarginMs: 10_000 }),
  mirrors: z.record(z.string(), mirrorSchema).default({}),
  /** File holding the mirrors' admin token (for `mirror retire`'s POST /admin/drain). */
  adminTokenFile: z.string().optional(),
  /** File holding a primary token with admin rights (for `keys rotate`'s POST /admin/keys/rotate). */
  primaryTokenFile: z.string().optional(),
});
export type CliConfig = z.infer<typeof fileSchema> & {
  stateFile: string;
  /** Bearer token for the mirrors' POST /admin/drain; undefined = `mirror retire` does not call it. */
  adminToken?: string | undefined;
  /** Bearer token with admin rights on the primary; undefined = `keys rotate` refuses to run. */
  primaryToken?: string | undefined;
};

/** Environment twins of the config file's fields (env wins over the file). */
export const CLI_ENV = {
  METASYNC_CONFIG: 'path of the JSON config file',
  METASYNC_PRIMARY: 'primary base URL (primary)',
  METASYNC_DNS_PROVIDER: 'route53 | powerdns | none (dns.provider)',
  METASYNC_DNS_TTL_S: 'answer TTL, at most 60 (dns.ttlS)',
  METASYNC_DNS_DRAIN_MARGIN_MS: 'wait after one TTL before a mirror stops (dns.drainMarginMs)',
  METASYNC_DNS_STATE_FILE: 'local DNS state file (default ~/.local/state/metasync/dns-state.json)',
  METASYNC_ROUTE53_ZONE_ID: 'hosted zone id (dns.route53.hostedZoneId)',
  METASYNC_ROUTE53_SERVICE_NAME: 'name clients resolve (dns.route53.serviceName)',
  METASYNC_ROUTE53_ENDPOINT: 'endpoint override, for tests against a fake (dns.route53.endpoint)',
  METASYNC_PDNS_API_URL: 'PowerDNS API base URL (dns.powerdns.apiUrl)',
  METASYNC_PDNS_API_KEY: 'PowerDNS API key (secret; or METASYNC_PDNS_API_KEY_FILE)',
  METASYNC_PDNS_API_KEY_FILE: 'file holding the PowerDNS API key',
  METASYNC_ADMIN_TOKEN: "mirrors' admin token: mirror retire then POSTs /admin/drain (secret; or METASYNC_ADMIN_TOKEN_FILE)",
  METASYNC_ADMIN_TOKEN_FILE: "file holding the mirrors' admin token (adminTokenFile)",
  METASYNC_PRIMARY_TOKEN: "a primary token with admin rights, for keys rotate (secret; or METASYNC_PRIMARY_TOKEN_FILE)",
  METASYNC_PRIMARY_TOKEN_FILE: 'file holding that primary token (primaryTokenFile)',
} as const;

function readConfigFile(path: string | undefined): unknown {
  if (path === undefined || path === '') return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `config file ${path} does not exist`, { path });
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `config file ${path} is not valid JSON: ${(err as Error).message}`, { path }, err);
  }
}

/** Pure apart from reading the named files: file, then env, then flags. */
export function loadCliConfig(input: { configPath?: string | undefined; primary?: string | undefined; env: NodeJS.ProcessEnv }): CliConfig {
  const env = input.env;
  const raw = readConfigFile(input.configPath ?? env.METASYNC_CONFIG) as Record<string, unknown>;
  const merged = structuredClone(raw);
  const dns = ((merged.dns as Record<string, unknown> | undefined) ?? {}) as Record<string, unknown>;
  merged.dns = dns;
  const set = (target: Record<string, unknown>, key: string, value: unknown): void => {
    if (value !== undefined && value !== '') target[key] = value;
  };
  set(merged, 'primary', input.primary ?? env.METASYNC_PRIMARY);
  set(dns, 'provider', env.METASYNC_DNS_PROVIDER);
  if (env.METASYNC_DNS_TTL_S !== undefined) set(dns, 'ttlS', Number(env.METASYNC_DNS_TTL_S));
  if (env.METASYNC_DNS_DRAIN_MARGIN_MS !== undefined) set(dns, 'drainMarginMs', Number(env.METASYNC_DNS_DRAIN_MARGIN_MS));
  if (env.METASYNC_ROUTE53_ZONE_ID !== undefined || env.METASYNC_ROUTE53_SERVICE_NAME !== undefined || env.METASYNC_ROUTE53_ENDPOINT !== undefined) {
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
  const parsed = fileSchema.safeParse(merged);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `metasync config: ${problems}`, {});
  }
  const config = parsed.data;
  if (config.dns.provider === 'route53' && config.dns.route53 === undefined) {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', 'metasync config: dns.provider is route53 but dns.route53 (hostedZoneId, serviceName) is missing', {});
  }
  if (config.dns.provider === 'powerdns') {
    if (config.dns.powerdns === undefined) throw metasyncError('METASYNC_ERR_CONFIG_INVALID', 'metasync config: dns.provider is powerdns but dns.powerdns is missing', {});
    const apiKey = readSecret(env.METASYNC_PDNS_API_KEY ?? config.dns.powerdns.apiKey, env.METASYNC_PDNS_API_KEY_FILE ?? config.dns.powerdns.apiKeyFile);
    if (apiKey === undefined) throw metasyncError('METASYNC_ERR_CONFIG_INVALID', 'metasync config: the PowerDNS API key is missing (METASYNC_PDNS_API_KEY or _FILE)', {});
    config.dns.powerdns.apiKey = apiKey;
  }
  const stateHome = env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state');
  const stateFile = env.METASYNC_DNS_STATE_FILE ?? config.dns.route53?.stateFile ?? join(stateHome, 'metasync', 'dns-state.json');
  const adminToken = readSecret(env.METASYNC_ADMIN_TOKEN, env.METASYNC_ADMIN_TOKEN_FILE ?? config.adminTokenFile);
  const primaryToken = readSecret(env.METASYNC_PRIMARY_TOKEN, env.METASYNC_PRIMARY_TOKEN_FILE ?? config.primaryTokenFile);
  return { ...config, stateFile, adminToken, primaryToken };
}
