import { z } from 'zod';
import { metasyncError } from '@metasync/shared';
import {
  formatIssues,
  HTTP_LIMITS_SCHEMA_SHAPE,
  httpLimitOptions,
  parseListen,
  parseOptions,
  pickHttpLimits,
  pickTlsFiles,
  readSecret,
  TLS_OPTIONS,
  TLS_SCHEMA_SHAPE,
  tlsPairProblem,
  type TlsFiles,
  type HttpServerLimits,
  type OptionSpec,
} from '@metasync/shared/daemon';
import { PRIMARY_HTTP_LIMITS } from './http-limits.js';
import { OBJECT_GC_OPTIONS, OBJECT_GC_SCHEMA_SHAPE, objectGcConfig, type ObjectGcConfig } from './store/gc-options.js';
import { PUBLISH_LIMIT_OPTIONS, PUBLISH_LIMIT_SCHEMA_SHAPE, publishLimitsConfig, type PublishLimitsConfig } from './publish/options.js';
import { SOURCE_WATCH_OPTIONS, SOURCE_WATCH_SCHEMA_SHAPE, sourceWatchConfig, type SourceWatchConfig } from './watch/options.js';
import { UPSTREAM_OPTIONS, UPSTREAM_SCHEMA_SHAPE, upstreamConfig, type UpstreamConfig } from './upstream/options.js';
import { PRIMARY_S3_OPTIONS, PRIMARY_S3_SCHEMA_SHAPE, primaryS3Config, type PrimaryS3Config } from './s3/setup.js';

export const OPTION_SPECS = [
  { key: 'source', flag: '--source <dir>', env: 'METASYNC_SOURCE', description: 'Composer repository tree to watch and publish' },
  ...SOURCE_WATCH_OPTIONS,
  ...UPSTREAM_OPTIONS,
  { key: 'data', flag: '--data <dir>', env: 'METASYNC_DATA', description: 'data dir: object store, journal, snapshots (required)' },
  {
    key: 'listen',
    flag: '--listen <host:port>',
    env: 'METASYNC_LISTEN',
    description: 'address to serve on',
    defaultValue: '127.0.0.1:8080',
  },
  {
    key: 'signingKeyFile',
    flag: '--signing-key-file <path>',
    env: 'METASYNC_SIGNING_KEY_FILE',
    description: 'Ed25519 private key (PEM); without it one is created in the data dir',
  },
  {
    key: 'publishToken',
    flag: '--publish-token <token>',
    env: 'METASYNC_PUBLISH_TOKEN',
    description: 'bearer token(s), comma-separated, enabling the publish and admin API',
    secret: true,
  },
  {
    key: 'publishTokenFile',
    flag: '--publish-token-file <path>',
    env: 'METASYNC_PUBLISH_TOKEN_FILE',
    description: 'file holding the publish token(s), one per line',
  },
  {
    key: 'journalKeep',
    flag: '--journal-keep <generations>',
    env: 'METASYNC_JOURNAL_KEEP',
    description: 'generations `changes?since=` still answers; older asks get a resync',
    defaultValue: '10000',
  },
  {
    key: 'journalKeepEntries',
    flag: '--journal-keep-entries <entries>',
    env: 'METASYNC_JOURNAL_KEEP_ENTRIES',
    description: 'most path entries those generations hold in memory; a mirror further behind resyncs from a snapshot',
    defaultValue: '200000',
  },
  {
    key: 'snapshotEvery',
    flag: '--snapshot-every <generations>',
    env: 'METASYNC_SNAPSHOT_EVERY',
    description: 'write a signed snapshot file every N generations',
    defaultValue: '1000',
  },
  {
    key: 'snapshotIntervalMs',
    flag: '--snapshot-interval-ms <ms>',
    env: 'METASYNC_SNAPSHOT_INTERVAL_MS',
    description: 'also write one this often when something changed',
    defaultValue: '600000',
  },
  {
    key: 'maxGenerationEntries',
    flag: '--max-generation-entries <paths>',
    env: 'METASYNC_MAX_GENERATION_ENTRIES',
    description: 'cap on paths coalesced into one generation',
    defaultValue: '5000',
  },
  {
    key: 'maxBodyBytes',
    flag: '--max-body-bytes <bytes>',
    env: 'METASYNC_MAX_BODY_BYTES',
    description: 'largest accepted request body',
    defaultValue: '8388608',
  },
  {
    key: 'heartbeatMs',
    flag: '--heartbeat-ms <ms>',
    env: 'METASYNC_HEARTBEAT_MS',
    description: 'SSE heartbeat comment interval on the events stream',
    defaultValue: '15000',
  },
  {
    key: 'distsUrl',
    flag: '--dists-url <url>',
    env: 'METASYNC_DISTS_URL',
    description:
      'base URL of the mirror network clients resolve (e.g. https://repo.example.com): every dist in the p2 files gets ' +
      'a preferred Composer mirror <url>/dists/%package%/%reference%.%type%; unset: dists are published as given',
  },
  {
    key: 'logLevel',
    flag: '--log-level <level>',
    env: 'METASYNC_LOG_LEVEL',
    description: 'fatal, error, warn, info, debug or trace',
    defaultValue: 'info',
  },
  ...PRIMARY_S3_OPTIONS,
  ...PUBLISH_LIMIT_OPTIONS,
  ...OBJECT_GC_OPTIONS,
  ...httpLimitOptions(PRIMARY_HTTP_LIMITS),
  ...TLS_OPTIONS,
] as const satisfies readonly OptionSpec[];

const positiveInt = z.string().regex(/^\d+$/, 'must be a positive integer').transform(Number).pipe(z.number().int().positive());

const rawSchema = z
  .object({
    source: z.string().min(1).optional(),
    data: z.string({ error: 'is required' }).min(1, 'is required'),
    listen: z.string().transform((value, ctx) => {
      try {
        return parseListen(value);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
    signingKeyFile: z.string().min(1).optional(),
    publishToken: z.string().optional(),
    publishTokenFile: z.string().optional(),
    journalKeep: positiveInt,
    journalKeepEntries: positiveInt,
    snapshotEvery: positiveInt,
    snapshotIntervalMs: positiveInt,
    maxGenerationEntries: positiveInt,
    maxBodyBytes: positiveInt,
    heartbeatMs: positiveInt,
    distsUrl: z.string().refine(isDistsUrl, 'must be an http(s) URL without query or fragment').optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    ...SOURCE_WATCH_SCHEMA_SHAPE,
    ...UPSTREAM_SCHEMA_SHAPE,
    ...PRIMARY_S3_SCHEMA_SHAPE,
    ...PUBLISH_LIMIT_SCHEMA_SHAPE,
    ...OBJECT_GC_SCHEMA_SHAPE,
    ...HTTP_LIMITS_SCHEMA_SHAPE,
    ...TLS_SCHEMA_SHAPE,
  })
  .superRefine((data, ctx) => {
    const tlsProblem = tlsPairProblem(data);
    if (tlsProblem !== undefined) ctx.addIssue({ code: 'custom', path: [tlsProblem.path], message: tlsProblem.message });
    // One source of truth per repository: a watched tree and an upstream would overwrite each other's files.
    if (data.source !== undefined && data.upstream !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['upstream'],
        message: 'cannot be combined with --source: choose one source for the repository',
      });
    }
  });

/** An absolute http(s) URL with no query or fragment (Composer appends the template to it). */
function isDistsUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return /^https?:$/.test(url.protocol) && url.search === '' && url.hash === '';
  } catch {
    return false;
  }
}

export interface PrimaryConfig {
  sourceDir: string | undefined;
  /** Rescan and fallback intervals, watch cap (watch/options.ts). */
  sourceWatch: SourceWatchConfig;
  /** --upstream: follow an upstream Composer v2 repository (upstream/options.ts); undefined without it. */
  upstream: UpstreamConfig | undefined;
  dataDir: string;
  listen: { host: string; port: number };
  signingKeyFile: string | undefined;
  /** Empty: the publish and admin API is disabled. */
  publishTokens: readonly string[];
  journalKeep: number;
  journalKeepEntries: number;
  snapshotEvery: number;
  snapshotIntervalMs: number;
  maxGenerationEntries: number;
  maxBodyBytes: number;
  heartbeatMs: number;
  /** --dists-url: the dist mirror every p2 file's dists get (dists/dist-mirrors.ts); undefined: none. */
  distsUrl: string | undefined;
  logLevel: string;
  /** S3 write-through; undefined without --s3-bucket. */
  s3: PrimaryS3Config | undefined;
  /** Scoped tokens file and the publish/admin rate limits (publish/options.ts). */
  publishLimits: PublishLimitsConfig;
  /** Local object store GC (store/gc-options.ts). */
  objectGc: ObjectGcConfig;
  /** What the HTTP server tolerates from clients (timeouts, header size, connections). */
  httpLimits: HttpServerLimits;
  /** --tls-cert/--tls-key: serve HTTPS (HTTP/2 + HTTP/1.1); undefined: plain HTTP. */
  tls: TlsFiles | undefined;
}

export type LoadedConfig = { help: true; helpText: string } | { help: false; config: Readonly<PrimaryConfig> };

/** Pure apart from reading a token file; every problem is reported in one METASYNC_ERR_CONFIG_INVALID. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): LoadedConfig {
  const parsed = parseOptions(
    'metasync-primary',
    'the metasync primary: publishes a Composer repository as signed generations (`metasync-primary token --help`: manage scoped publish tokens)',
    OPTION_SPECS,
    argv,
    env,
  );
  if (parsed.help) return { help: true, helpText: parsed.helpText };
  const result = rawSchema.safeParse(parsed.raw);
  if (!result.success) {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `metasync-primary: ${formatIssues(result.error.issues, OPTION_SPECS)}`, {
      problems: result.error.issues.length,
    });
  }
  const raw = result.data;
  let tokenText: string | undefined;
  try {
    tokenText = readSecret(raw.publishToken, raw.publishTokenFile);
  } catch (err) {
    throw metasyncError(
      'METASYNC_ERR_CONFIG_INVALID',
      `metasync-primary: --publish-token-file ${raw.publishTokenFile ?? ''} cannot be read`,
      { path: raw.publishTokenFile },
      err,
    );
  }
  const publishTokens = (tokenText ?? '')
    .split(/[\n,]/)
    .map((token) => token.trim())
    .filter((token) => token.length > 0);
  return {
    help: false,
    config: Object.freeze({
      sourceDir: raw.source,
      sourceWatch: sourceWatchConfig(raw),
      upstream: upstreamConfig(raw),
      dataDir: raw.data,
      listen: raw.listen,
      signingKeyFile: raw.signingKeyFile,
      publishTokens: Object.freeze(publishTokens),
      journalKeep: raw.journalKeep,
      journalKeepEntries: raw.journalKeepEntries,
      snapshotEvery: raw.snapshotEvery,
      snapshotIntervalMs: raw.snapshotIntervalMs,
      maxGenerationEntries: raw.maxGenerationEntries,
      maxBodyBytes: raw.maxBodyBytes,
      heartbeatMs: raw.heartbeatMs,
      distsUrl: raw.distsUrl,
      logLevel: raw.logLevel,
      s3: primaryS3Config(raw),
      publishLimits: publishLimitsConfig(raw),
      objectGc: objectGcConfig(raw),
      httpLimits: Object.freeze(pickHttpLimits(raw)),
      tls: pickTlsFiles(raw),
    }),
  };
}
