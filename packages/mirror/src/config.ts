import { isIP } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';
import { loadDnsConfig as loadRegistrarConfig, type DnsConfig } from '@metasync/dns/config';
import { isMetasyncError, metasyncError } from '@metasync/shared';
import {
  formatIssues,
  HTTP_LIMITS_SCHEMA_SHAPE,
  parseListen,
  parseOptions,
  pickTlsFiles,
  readSecret,
  TLS_SCHEMA_SHAPE,
  tlsPairProblem,
  type TlsFiles,
} from '@metasync/shared/daemon';
import { readPrimaryCa } from './sync/primary-ca.js';
import { MIRROR_OPTIONS } from './config-options.js';
import { MIRROR_S3_SCHEMA_SHAPE } from './sync/s3-source.js';
import { DIST_SCHEMA_SHAPE } from './dists/dist-options.js';
import { MAX_WORKERS } from './workers/worker-count.js';

export { MIRROR_OPTIONS };

const int = (min: number) => z.coerce.number().int().min(min);
const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL');

const schema = z
  .object({
    primary: httpUrl,
    data: z.string().min(1),
    listen: z.string().transform((value, ctx) => {
      try {
        return parseListen(value);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
    primaryKey: z.string().optional(),
    primaryKeyFile: z.string().optional(),
    trustFirstKey: z.boolean(),
    mirrorCredential: z.string().optional(),
    mirrorCredentialFile: z.string().optional(),
    primaryCa: z.string().min(1).optional(),
    mirrorId: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1-64 of [A-Za-z0-9_.:-]')
      .optional(),
    region: z.string().regex(/^[a-z0-9-]{1,32}$/, 'must be 1-32 of [a-z0-9-]'),
    publicUrl: httpUrl.optional(),
    hotCacheBytes: int(0),
    // How many serving threads: resolved to a count at start (workers/worker-count.ts), so loadConfig stays pure.
    workers: z.union([z.literal('auto'), int(1).max(MAX_WORKERS)]),
    fetchConcurrency: int(1).max(256),
    gcGraceMs: int(0),
    maxLagMs: int(1),
    maxLagSeq: int(0),
    maxUnconfirmedMs: int(0),
    pollIntervalMs: int(50),
    proxyTimeoutMs: int(50),
    proxyMaxBodyBytes: int(1),
    connectTimeoutMs: int(50),
    eventsIdleTimeoutMs: int(100),
    requestTimeoutMs: int(100),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    adminToken: z.string().optional(),
    adminTokenFile: z.string().optional(),
    adminRateLimit: int(0),
    rateLimitWindowMs: int(1),
    dnsSelfRegister: z.boolean(),
    publicAddress: z
      .string()
      .refine((a) => isIP(a) !== 0, 'must be an IPv4 or IPv6 address')
      .optional(),
    dnsTimeoutMs: int(1000),
    ...MIRROR_S3_SCHEMA_SHAPE,
    ...DIST_SCHEMA_SHAPE,
    ...HTTP_LIMITS_SCHEMA_SHAPE,
    ...TLS_SCHEMA_SHAPE,
  })
  .superRefine((data, ctx) => {
    const tlsProblem = tlsPairProblem(data);
    if (tlsProblem !== undefined) ctx.addIssue({ code: 'custom', path: [tlsProblem.path], message: tlsProblem.message });
    // A CA for a plain-HTTP primary would suggest a protection that is not there.
    if (data.primaryCa !== undefined && new URL(data.primary).protocol !== 'https:')
      ctx.addIssue({ code: 'custom', path: ['primaryCa'], message: `needs an https:// --primary, got ${data.primary}` });
    // An archive bigger than the whole cache could only be stored by evicting itself.
    if (data.distCacheBytes > 0 && data.distMaxBytes > data.distCacheBytes)
      ctx.addIssue({
        code: 'custom',
        path: ['distMaxBytes'],
        message: `must not exceed --dist-cache-bytes (${data.distCacheBytes}), got ${data.distMaxBytes}`,
      });
    // Each poll is one challenge: a bound under two polls would flap on one slow answer.
    if (data.maxUnconfirmedMs > 0 && data.maxUnconfirmedMs < 2 * data.pollIntervalMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxUnconfirmedMs'],
        message: `must be 0 (off) or at least twice --poll-interval-ms (${2 * data.pollIntervalMs}), got ${data.maxUnconfirmedMs}`,
      });
    }
  });

/** Self-registration settings; present only with --dns-self-register. */
export interface MirrorDnsConfig {
  /** The registrar settings: METASYNC_CONFIG's `dns` section and the same env names as the metasync CLI. */
  registrar: DnsConfig;
  /** What DNS answers carry (--public-address, else the public URL or listen host when an IP). */
  address: string;
}

export type MirrorConfig = Readonly<
  Omit<
    z.infer<typeof schema>,
    'adminTokenFile' | 'primaryKeyFile' | 'mirrorCredentialFile' | 'primaryCa' | 'tlsCert' | 'tlsKey' | 'tlsReloadIntervalMs'
  > & {
    dns: MirrorDnsConfig | undefined;
    /** --primary-ca read and checked: the CAs trusted for the primary (instead of the system's); undefined: system CAs. */
    primaryCa: Buffer | undefined;
    /** --tls-cert/--tls-key: serve HTTPS (HTTP/2 + HTTP/1.1); undefined: plain HTTP. */
    tls: TlsFiles | undefined;
  }
>;

export type LoadConfigResult = { help: true; helpText: string } | { help: false; config: MirrorConfig };

/** Pure: argv (without node/script) and env in, a frozen config or one METASYNC_ERR_CONFIG_INVALID listing every problem out. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): LoadConfigResult {
  const parsed = parseOptions(
    'metasync-mirror',
    'Serve a verified, continuously synced copy of a metasync primary.',
    MIRROR_OPTIONS,
    argv,
    env,
  );
  if (parsed.help) return { help: true, helpText: parsed.helpText };
  const result = schema.safeParse(parsed.raw);
  if (!result.success) {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `metasync-mirror: ${formatIssues(result.error.issues, MIRROR_OPTIONS)}`, {});
  }
  const {
    adminTokenFile,
    primaryKeyFile,
    mirrorCredentialFile,
    primaryCa: primaryCaFile,
    tlsCert,
    tlsKey,
    tlsReloadIntervalMs,
    ...data
  } = result.data;
  const adminToken = readFileOption(data.adminToken, adminTokenFile, '--admin-token-file');
  const mirrorCredential = readFileOption(data.mirrorCredential, mirrorCredentialFile, '--mirror-credential-file')?.trim();
  const primaryKey = pinnedKeyOf(data, primaryKeyFile);
  const dns = data.dnsSelfRegister ? loadDnsConfig(result.data, env) : undefined;
  const primaryCa = primaryCaFile === undefined ? undefined : readPrimaryCa(primaryCaFile);
  const tls = pickTlsFiles({ tlsCert, tlsKey, tlsReloadIntervalMs });
  return { help: false, config: Object.freeze({ ...data, primaryKey, adminToken, mirrorCredential, dns, primaryCa, tls }) };
}

/** A value given directly or through a file flag; an unreadable file is a config error naming the flag. */
function readFileOption(value: string | undefined, file: string | undefined, flag: string): string | undefined {
  return readSecret(value, file, `metasync-mirror: ${flag}`);
}

/**
 * The pinned primary key, from --primary-key or the file --primary-key-file
 * names (`<keyId>:<publicKey>`, as `metasync keys list` prints it). Without one,
 * a mirror would trust whatever key its first state answer lists, so it refuses
 * to start unless the operator chose that with --trust-first-key.
 */
function pinnedKeyOf(data: { primaryKey?: string | undefined; trustFirstKey: boolean }, file: string | undefined): string | undefined {
  if (data.primaryKey !== undefined && data.primaryKey !== '' && file !== undefined && file !== '') {
    throw metasyncError(
      'METASYNC_ERR_CONFIG_INVALID',
      'metasync-mirror: --primary-key / METASYNC_PRIMARY_KEY and --primary-key-file / METASYNC_PRIMARY_KEY_FILE both set: give one',
      {},
    );
  }
  const pinned = readFileOption(data.primaryKey, file, '--primary-key-file')?.trim();
  // Its format is checked where it is used (mirror.ts, parsePinnedKey), so placeholder pins in templates still load.
  if (pinned !== undefined && pinned !== '') return pinned;
  if (data.trustFirstKey) return undefined;
  throw metasyncError(
    'METASYNC_ERR_CONFIG_KEY_UNPINNED',
    'metasync-mirror: no pinned primary key: pass --primary-key <keyId:publicKey> (METASYNC_PRIMARY_KEY) or --primary-key-file <path> ' +
      "(METASYNC_PRIMARY_KEY_FILE), as `metasync keys list` prints it; --trust-first-key trusts whatever key the primary's first answer lists",
    { flag: '--primary-key' },
  );
}

function loadDnsConfig(data: z.infer<typeof schema>, env: NodeJS.ProcessEnv): MirrorDnsConfig {
  const problems: string[] = [];
  let registrar: DnsConfig | undefined;
  try {
    registrar = loadRegistrarConfig({ env, defaultStateFile: join(data.data, 'dns-state.json') });
  } catch (err) {
    if (!isMetasyncError(err, 'METASYNC_ERR_CONFIG_INVALID')) throw err;
    problems.push(err.message);
  }
  if (registrar !== undefined && registrar.dns.provider === 'none')
    problems.push('--dns-self-register needs METASYNC_DNS_PROVIDER (route53 or powerdns) and its settings');
  const publicHost = data.publicUrl === undefined ? undefined : new URL(data.publicUrl).hostname.replace(/^\[(.*)\]$/, '$1');
  const listenHost = data.listen.host;
  const address =
    data.publicAddress ??
    (publicHost !== undefined
      ? isIP(publicHost) === 0
        ? undefined
        : publicHost
      : isIP(listenHost) === 0 || /^(0\.0\.0\.0|::)$/.test(listenHost)
        ? undefined
        : listenHost);
  if (address === undefined)
    problems.push(
      '--dns-self-register needs --public-address / METASYNC_PUBLIC_ADDRESS (the public URL host or listen host is not a usable IP)',
    );
  if (problems.length > 0 || registrar === undefined || address === undefined) {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `metasync-mirror: ${problems.join('; ')}`, {});
  }
  return { registrar, address };
}
