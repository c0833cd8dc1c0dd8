/**
 * The upstream follower's options (--upstream*), spread into config.ts's option
 * table and schema like watch/options.ts.
 */
import { z } from 'zod';
import type { OptionSpec } from '@metasync/shared/daemon';

export const DEFAULT_UPSTREAM_POLL_MS = 2_000;

export const UPSTREAM_OPTIONS = [
  {
    key: 'upstream',
    flag: '--upstream <url>',
    env: 'METASYNC_UPSTREAM',
    description: 'follow this Composer v2 repository (e.g. https://repo.packagist.org) through its change feed; excludes --source',
  },
  {
    key: 'upstreamPollMs',
    flag: '--upstream-poll-ms <ms>',
    env: 'METASYNC_UPSTREAM_POLL_MS',
    description: "poll the upstream's metadata/changes.json this often",
    defaultValue: String(DEFAULT_UPSTREAM_POLL_MS),
  },
  {
    key: 'upstreamConcurrency',
    flag: '--upstream-concurrency <requests>',
    env: 'METASYNC_UPSTREAM_CONCURRENCY',
    description: 'most requests in flight to the upstream (bootstrap and resync fetch every p2 file)',
    defaultValue: '16',
  },
  {
    key: 'upstreamTimeoutMs',
    flag: '--upstream-timeout-ms <ms>',
    env: 'METASYNC_UPSTREAM_TIMEOUT_MS',
    description: 'per-request timeout (headers, then between body chunks); a timed-out request is retried',
    defaultValue: '30000',
  },
] as const satisfies readonly OptionSpec[];

const positiveInt = z.string().regex(/^\d+$/, 'must be a positive integer').transform(Number).pipe(z.number().int().positive());

export const UPSTREAM_SCHEMA_SHAPE = {
  upstream: z
    .string()
    .refine((value) => {
      try {
        const url = new URL(value);
        return (url.protocol === 'http:' || url.protocol === 'https:') && url.username === '' && url.password === '';
      } catch {
        return false;
      }
    }, 'must be an http(s) URL without credentials')
    .optional(),
  upstreamPollMs: positiveInt,
  upstreamConcurrency: positiveInt.pipe(z.number().max(256, 'must be at most 256')),
  upstreamTimeoutMs: positiveInt,
};

export interface UpstreamConfig {
  /** The repository's base URL or its packages.json URL. */
  url: string;
  pollMs: number;
  concurrency: number;
  timeoutMs: number;
}

export function upstreamConfig(raw: {
  upstream?: string | undefined;
  upstreamPollMs: number;
  upstreamConcurrency: number;
  upstreamTimeoutMs: number;
}): UpstreamConfig | undefined {
  if (raw.upstream === undefined) return undefined;
  return Object.freeze({
    url: raw.upstream,
    pollMs: raw.upstreamPollMs,
    concurrency: raw.upstreamConcurrency,
    timeoutMs: raw.upstreamTimeoutMs,
  });
}
