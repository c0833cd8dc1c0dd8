import { z } from 'zod';
import { formatIssues, metasyncError, parseListen, parseOptions, type OptionSpec } from '@metasync/shared';
import { MIRROR_S3_OPTIONS, MIRROR_S3_SCHEMA_SHAPE } from './sync/s3-source.js';

export const MIRROR_OPTIONS = [
  { key: 'primary', flag: '--primary <url>', env: 'METASYNC_PRIMARY', description: "primary's base URL (sync API and repository)" },
  { key: 'data', flag: '--data <dir>', env: 'METASYNC_DATA', description: 'data directory (objects, applied index, pinned keys, mirror id)' },
  { key: 'listen', flag: '--listen <host:port>', env: 'METASYNC_LISTEN', description: 'address to serve on', defaultValue: '127.0.0.1:8081' },
  { key: 'primaryKey', flag: '--primary-key <keyId:base64url>', env: 'METASYNC_PRIMARY_KEY', description: "pin the primary's Ed25519 public key (else trust on first use)" },
  { key: 'mirrorId', flag: '--mirror-id <id>', env: 'METASYNC_MIRROR_ID', description: 'name reported to the primary (default: generated once, kept in the data dir)' },
  { key: 'region', flag: '--region <name>', env: 'METASYNC_REGION', description: 'region reported to the primary', defaultValue: 'local' },
  { key: 'publicUrl', flag: '--public-url <url>', env: 'METASYNC_PUBLIC_URL', description: 'URL clients use for this mirror (default: the listen URL)' },
  { key: 'hotCacheBytes', flag: '--hot-cache-bytes <n>', env: 'METASYNC_HOT_CACHE_BYTES', description: 'memory budget for hot object bodies', defaultValue: String(64 * 1024 * 1024) },
  { key: 'fetchConcurrency', flag: '--fetch-concurrency <n>', env: 'METASYNC_FETCH_CONCURRENCY', description: 'parallel object fetches (and pool connections) to the primary', defaultValue: '16' },
  { key: 'gcGraceMs', flag: '--gc-grace-ms <ms>', env: 'METASYNC_GC_GRACE_MS', description: 'how long a dereferenced object stays servable', defaultValue: '600000' },
  { key: 'maxLagMs', flag: '--max-lag-ms <ms>', env: 'METASYNC_MAX_LAG_MS', description: 'freshness: longest time behind (or without news from) the primary', defaultValue: '10000' },
  { key: 'maxLagSeq', flag: '--max-lag-seq <n>', env: 'METASYNC_MAX_LAG_SEQ', description: 'freshness: most generations behind the primary head', defaultValue: '100' },
  { key: 'pollIntervalMs', flag: '--poll-interval-ms <ms>', env: 'METASYNC_POLL_INTERVAL_MS', description: 'state poll (fallback for lost push events, and liveness)', defaultValue: '1000' },
  { key: 'proxyTimeoutMs', flag: '--proxy-timeout-ms <ms>', env: 'METASYNC_PROXY_TIMEOUT_MS', description: 'total budget of a proxy fallback request', defaultValue: '3000' },
  { key: 'connectTimeoutMs', flag: '--connect-timeout-ms <ms>', env: 'METASYNC_CONNECT_TIMEOUT_MS', description: 'TCP connect timeout to the primary', defaultValue: '2000' },
  { key: 'requestTimeoutMs', flag: '--request-timeout-ms <ms>', env: 'METASYNC_REQUEST_TIMEOUT_MS', description: 'sync request headers/body inactivity timeout', defaultValue: '15000' },
  { key: 'logLevel', flag: '--log-level <level>', env: 'METASYNC_LOG_LEVEL', description: 'pino log level', defaultValue: 'info' },
  ...MIRROR_S3_OPTIONS,
] as const satisfies readonly OptionSpec[];

const int = (min: number) => z.coerce.number().int().min(min);
const httpUrl = z.string().url().refine((u) => /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL');

const schema = z.object({
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
  mirrorId: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1-64 of [A-Za-z0-9_.:-]').optional(),
  region: z.string().regex(/^[a-z0-9-]{1,32}$/, 'must be 1-32 of [a-z0-9-]'),
  publicUrl: httpUrl.optional(),
  hotCacheBytes: int(0),
  fetchConcurrency: int(1).max(256),
  gcGraceMs: int(0),
  maxLagMs: int(1),
  maxLagSeq: int(0),
  pollIntervalMs: int(50),
  proxyTimeoutMs: int(50),
  connectTimeoutMs: int(50),
  requestTimeoutMs: int(100),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  ...MIRROR_S3_SCHEMA_SHAPE,
});

export type MirrorConfig = Readonly<z.infer<typeof schema>>;

export type LoadConfigResult = { help: true; helpText: string } | { help: false; config: MirrorConfig };

/** Pure: argv (without node/script) and env in, a frozen config or one METASYNC_ERR_CONFIG_INVALID listing every problem out. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): LoadConfigResult {
  const parsed = parseOptions('metasync-mirror', 'Serve a verified, continuously synced copy of a metasync primary.', MIRROR_OPTIONS, argv, env);
  if (parsed.help) return { help: true, helpText: parsed.helpText };
  const result = schema.safeParse(parsed.raw);
  if (!result.success) {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `metasync-mirror: ${formatIssues(result.error.issues, MIRROR_OPTIONS)}`, {});
  }
  return { help: false, config: Object.freeze(result.data) };
}
