/**
 * The primary's options for publish credentials and rate limits, spread into
 * config.ts's option table and schema (like s3/setup.ts's).
 */
import { z } from 'zod';
import type { OptionSpec } from '@metasync/shared/daemon';
import { DEFAULT_RATE_LIMITS, type RateLimitConfig } from '../routes/rate-limits.js';

export const PUBLISH_LIMIT_OPTIONS = [
  {
    key: 'tokensFile',
    flag: '--tokens-file <path>',
    env: 'METASYNC_TOKENS_FILE',
    description:
      'JSON file of scoped publish tokens (sha256 of each secret, vendor patterns, admin, ' +
      'revoked); re-read when it changes, no restart. Create entries with `metasync-primary token ' +
      'create`',
  },
  {
    key: 'tokensPollMs',
    flag: '--tokens-poll-ms <ms>',
    env: 'METASYNC_TOKENS_POLL_MS',
    description: 'also re-stat the tokens file this often (besides watching it); 0 = watch only',
    defaultValue: '1000',
  },
  {
    key: 'publishRateLimit',
    flag: '--publish-rate-limit <requests>',
    env: 'METASYNC_PUBLISH_RATE_LIMIT',
    description: 'publish API calls per window per token (per client address without a valid token); 0 = unlimited',
    defaultValue: String(DEFAULT_RATE_LIMITS.publish.max),
  },
  {
    key: 'adminRateLimit',
    flag: '--admin-rate-limit <requests>',
    env: 'METASYNC_ADMIN_RATE_LIMIT',
    description: 'admin calls per window per token (per client address without a valid token); 0 = unlimited',
    defaultValue: String(DEFAULT_RATE_LIMITS.admin.max),
  },
  {
    key: 'rateLimitWindowMs',
    flag: '--rate-limit-window-ms <ms>',
    env: 'METASYNC_RATE_LIMIT_WINDOW_MS',
    description: 'window of the publish and admin rate limits',
    defaultValue: String(DEFAULT_RATE_LIMITS.publish.windowMs),
  },
] as const satisfies readonly OptionSpec[];

const count = z.string().regex(/^\d+$/, 'must be a non-negative integer').transform(Number);
const positive = count.pipe(z.number().int().positive('must be a positive integer'));

export const PUBLISH_LIMIT_SCHEMA_SHAPE = {
  tokensFile: z.string().min(1).optional(),
  tokensPollMs: count,
  publishRateLimit: count,
  adminRateLimit: count,
  rateLimitWindowMs: positive,
};

export interface PublishLimitsConfig {
  tokensFile: string | undefined;
  tokensPollMs: number;
  rateLimits: RateLimitConfig;
}

export function publishLimitsConfig(raw: {
  tokensFile?: string | undefined;
  tokensPollMs: number;
  publishRateLimit: number;
  adminRateLimit: number;
  rateLimitWindowMs: number;
}): PublishLimitsConfig {
  return {
    tokensFile: raw.tokensFile,
    tokensPollMs: raw.tokensPollMs,
    rateLimits: {
      publish: { max: raw.publishRateLimit, windowMs: raw.rateLimitWindowMs },
      admin: { max: raw.adminRateLimit, windowMs: raw.rateLimitWindowMs },
    },
  };
}
