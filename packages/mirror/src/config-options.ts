/** Every flag of metasync-mirror, with its METASYNC_* twin, default and --help text; config.ts validates them. */
import { httpLimitOptions, TLS_OPTIONS, type OptionSpec } from '@metasync/shared/daemon';
import { MIRROR_HTTP_LIMITS } from './serve/http-limits.js';
import { MIRROR_S3_OPTIONS } from './sync/s3-source.js';
import { DIST_OPTIONS } from './dists/dist-options.js';

export const MIRROR_OPTIONS = [
  { key: 'primary', flag: '--primary <url>', env: 'METASYNC_PRIMARY', description: "primary's base URL (sync API and repository)" },
  {
    key: 'data',
    flag: '--data <dir>',
    env: 'METASYNC_DATA',
    description: 'data directory (objects, applied index, pinned keys, mirror id)',
  },
  {
    key: 'listen',
    flag: '--listen <host:port>',
    env: 'METASYNC_LISTEN',
    description: 'address to serve on',
    defaultValue: '127.0.0.1:8081',
  },
  {
    key: 'primaryKey',
    flag: '--primary-key <keyId:base64url>',
    env: 'METASYNC_PRIMARY_KEY',
    description: "pin the primary's Ed25519 public key (`metasync keys list`); this, --primary-key-file or --trust-first-key is required",
  },
  {
    key: 'primaryKeyFile',
    flag: '--primary-key-file <path>',
    env: 'METASYNC_PRIMARY_KEY_FILE',
    description: 'file holding the --primary-key value (written by `metasync mirror up --primary-key-file`)',
  },
  {
    key: 'trustFirstKey',
    flag: '--trust-first-key',
    env: 'METASYNC_TRUST_FIRST_KEY',
    description:
      "with no pinned key, trust whatever key the primary's first state answer lists (warned at every start; tests and demos only)",
    boolean: true,
  },
  {
    key: 'mirrorCredential',
    flag: '--mirror-credential <secret>',
    env: 'METASYNC_MIRROR_CREDENTIAL',
    description: "this mirror's enrollment credential, sent on acks and the push stream (secret; prefer the _FILE form)",
    secret: true,
  },
  {
    key: 'mirrorCredentialFile',
    flag: '--mirror-credential-file <path>',
    env: 'METASYNC_MIRROR_CREDENTIAL_FILE',
    description: 'file holding the mirror credential (written by `metasync mirror up --credential-file`)',
  },
  {
    key: 'primaryCa',
    flag: '--primary-ca <file>',
    env: 'METASYNC_PRIMARY_CA',
    description:
      "PEM CA certificate(s) that sign an https:// primary's certificate (a private CA); trusted instead of the system CAs for every request to the primary",
  },
  {
    key: 'mirrorId',
    flag: '--mirror-id <id>',
    env: 'METASYNC_MIRROR_ID',
    description: 'name reported to the primary (default: generated once, kept in the data dir)',
  },
  { key: 'region', flag: '--region <name>', env: 'METASYNC_REGION', description: 'region reported to the primary', defaultValue: 'local' },
  {
    key: 'publicUrl',
    flag: '--public-url <url>',
    env: 'METASYNC_PUBLIC_URL',
    description: 'URL clients use for this mirror (default: the listen URL)',
  },
  {
    key: 'hotCacheBytes',
    flag: '--hot-cache-bytes <n>',
    env: 'METASYNC_HOT_CACHE_BYTES',
    description: 'memory budget for hot object bodies, their bookkeeping (~280 B a body) included',
    defaultValue: String(64 * 1024 * 1024),
  },
  {
    key: 'workers',
    flag: '--workers <n|auto>',
    env: 'METASYNC_WORKERS',
    description:
      'serving threads on the listen address (reusePort), sharing the index; auto = one per core; 1 = serve from the main thread. Each worker has its own --hot-cache-bytes',
    defaultValue: '1',
  },
  {
    key: 'fetchConcurrency',
    flag: '--fetch-concurrency <n>',
    env: 'METASYNC_FETCH_CONCURRENCY',
    description: 'parallel object fetches (and pool connections) to the primary',
    defaultValue: '16',
  },
  {
    key: 'gcGraceMs',
    flag: '--gc-grace-ms <ms>',
    env: 'METASYNC_GC_GRACE_MS',
    description: 'how long a dereferenced object stays servable',
    defaultValue: '600000',
  },
  {
    key: 'maxLagMs',
    flag: '--max-lag-ms <ms>',
    env: 'METASYNC_MAX_LAG_MS',
    description: 'freshness: longest time behind (or without news from) the primary',
    defaultValue: '10000',
  },
  {
    key: 'maxLagSeq',
    flag: '--max-lag-seq <n>',
    env: 'METASYNC_MAX_LAG_SEQ',
    description: 'freshness: most generations behind the primary head',
    defaultValue: '100',
  },
  {
    key: 'maxUnconfirmedMs',
    flag: '--max-unconfirmed-ms <ms>',
    env: 'METASYNC_MAX_UNCONFIRMED_MS',
    description:
      "freshness (freeze defence): longest time without a signed primary state answering this mirror's nonce challenge, by the mirror's own monotonic clock; 0 = off",
    defaultValue: '30000',
  },
  {
    key: 'pollIntervalMs',
    flag: '--poll-interval-ms <ms>',
    env: 'METASYNC_POLL_INTERVAL_MS',
    description: 'state poll (fallback for lost push events, and liveness)',
    defaultValue: '1000',
  },
  {
    key: 'proxyTimeoutMs',
    flag: '--proxy-timeout-ms <ms>',
    env: 'METASYNC_PROXY_TIMEOUT_MS',
    description: 'total budget of a proxy fallback request',
    defaultValue: '3000',
  },
  {
    key: 'proxyMaxBodyBytes',
    flag: '--proxy-max-body-bytes <n>',
    env: 'METASYNC_PROXY_MAX_BODY_BYTES',
    description: 'largest proxy fallback body buffered to verify its signature and hash; a larger one is answered 404',
    defaultValue: String(8 * 1024 * 1024),
  },
  {
    key: 'connectTimeoutMs',
    flag: '--connect-timeout-ms <ms>',
    env: 'METASYNC_CONNECT_TIMEOUT_MS',
    description: 'TCP connect timeout to the primary',
    defaultValue: '2000',
  },
  {
    key: 'eventsIdleTimeoutMs',
    flag: '--events-idle-timeout-ms <ms>',
    env: 'METASYNC_EVENTS_IDLE_TIMEOUT_MS',
    description:
      "reconnect the push stream after this long without a byte (keep above the primary's --heartbeat-ms; default 3x its default)",
    defaultValue: '45000',
  },
  {
    key: 'requestTimeoutMs',
    flag: '--request-timeout-ms <ms>',
    env: 'METASYNC_REQUEST_TIMEOUT_MS',
    description: 'sync request headers/body inactivity timeout',
    defaultValue: '15000',
  },
  { key: 'logLevel', flag: '--log-level <level>', env: 'METASYNC_LOG_LEVEL', description: 'pino log level', defaultValue: 'info' },
  {
    key: 'adminToken',
    flag: '--admin-token <token>',
    env: 'METASYNC_ADMIN_TOKEN',
    description: 'bearer token for POST /admin/drain (secret; prefer the _FILE form; unset = route answers 404)',
    secret: true,
  },
  {
    key: 'adminTokenFile',
    flag: '--admin-token-file <path>',
    env: 'METASYNC_ADMIN_TOKEN_FILE',
    description: 'file holding the admin token',
  },
  {
    key: 'adminRateLimit',
    flag: '--admin-rate-limit <requests>',
    env: 'METASYNC_ADMIN_RATE_LIMIT',
    description: 'admin calls per window per client address (429 beyond); 0 = unlimited; serving routes are never limited',
    defaultValue: '30',
  },
  {
    key: 'rateLimitWindowMs',
    flag: '--rate-limit-window-ms <ms>',
    env: 'METASYNC_RATE_LIMIT_WINDOW_MS',
    description: 'window of the admin rate limit',
    defaultValue: '60000',
  },
  {
    key: 'dnsSelfRegister',
    flag: '--dns-self-register',
    env: 'METASYNC_DNS_SELF_REGISTER',
    description:
      'enter DNS once fresh, leave it on drain and SIGTERM; DNS settings from env like the ' +
      'metasync CLI: METASYNC_DNS_PROVIDER, METASYNC_DNS_TTL_S, METASYNC_DNS_DRAIN_MARGIN_MS, ' +
      'METASYNC_DNS_STATE_FILE (default <data>/dns-state.json), METASYNC_ROUTE53_ZONE_ID, ' +
      'METASYNC_ROUTE53_SERVICE_NAME, METASYNC_ROUTE53_ENDPOINT, METASYNC_PDNS_API_URL, ' +
      'METASYNC_PDNS_API_KEY[_FILE], or a JSON file METASYNC_CONFIG',
    boolean: true,
  },
  {
    key: 'publicAddress',
    flag: '--public-address <ip>',
    env: 'METASYNC_PUBLIC_ADDRESS',
    description: 'IP that DNS answers carry (default: the public URL host, else the listen host, when an IP)',
  },
  {
    key: 'dnsTimeoutMs',
    flag: '--dns-timeout-ms <ms>',
    env: 'METASYNC_DNS_TIMEOUT_MS',
    description: 'bound on the DNS withdraw, and on the health-check delete, at SIGTERM',
    defaultValue: '120000',
  },
  ...MIRROR_S3_OPTIONS,
  ...DIST_OPTIONS,
  ...TLS_OPTIONS,
  ...httpLimitOptions(MIRROR_HTTP_LIMITS),
] as const satisfies readonly OptionSpec[];
