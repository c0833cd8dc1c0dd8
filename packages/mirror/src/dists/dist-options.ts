/**
 * The mirror's dist archive options, spread into config-options.ts's table and
 * config.ts's schema (like sync/s3-source.ts's).
 */
import { z } from 'zod';
import type { OptionSpec } from '@metasync/shared/daemon';

/** Hosts whose archives a mirror fetches by default: the common code hosts and their archive services. */
export const DEFAULT_DIST_ALLOW_HOSTS = [
  'github.com',
  'api.github.com',
  'codeload.github.com',
  'objects.githubusercontent.com',
  'gitlab.com',
  'bitbucket.org',
  'api.bitbucket.org',
] as const;

export const DIST_OPTIONS = [
  {
    key: 'distCacheBytes',
    flag: '--dist-cache-bytes <bytes>',
    env: 'METASYNC_DIST_CACHE_BYTES',
    description: 'disk budget of the dist archive cache; least recently served archives are evicted past it; 0 disables /dists/',
    defaultValue: String(10 * 1024 ** 3),
  },
  {
    key: 'distMaxBytes',
    flag: '--dist-max-bytes <bytes>',
    env: 'METASYNC_DIST_MAX_BYTES',
    description: 'largest archive fetched from an origin',
    defaultValue: String(256 * 1024 ** 2),
  },
  {
    key: 'distFetchConcurrency',
    flag: '--dist-fetch-concurrency <n>',
    env: 'METASYNC_DIST_FETCH_CONCURRENCY',
    description: 'archive fetches from origins at once (more wait in line)',
    defaultValue: '8',
  },
  {
    key: 'distFetchTimeoutMs',
    flag: '--dist-fetch-timeout-ms <ms>',
    env: 'METASYNC_DIST_FETCH_TIMEOUT_MS',
    description: 'whole archive fetch, redirects included',
    defaultValue: '120000',
  },
  {
    key: 'distAllowHosts',
    flag: '--dist-allow-hosts <hosts>',
    env: 'METASYNC_DIST_ALLOW_HOSTS',
    description: 'comma-separated origin hosts archives may be fetched from (a host allows its subdomains)',
    defaultValue: DEFAULT_DIST_ALLOW_HOSTS.join(','),
  },
  {
    key: 'distAllowPrivate',
    flag: '--dist-allow-private',
    env: 'METASYNC_DIST_ALLOW_PRIVATE',
    description: 'allow origins that resolve to loopback, private or link-local addresses (tests, internal code hosts)',
    boolean: true,
  },
] as const satisfies readonly OptionSpec[];

const int = (min: number) => z.coerce.number().int().min(min);

export const DIST_SCHEMA_SHAPE = {
  distCacheBytes: int(0),
  distMaxBytes: int(1),
  distFetchConcurrency: int(1).max(256),
  distFetchTimeoutMs: int(100),
  distAllowHosts: z.string().transform((value) =>
    value
      .split(',')
      .map((host) => host.trim().toLowerCase())
      .filter((host) => host.length > 0),
  ),
  distAllowPrivate: z.boolean(),
};
