/**
 * Bounded retries with exponential backoff and full jitter for S3 calls, shared
 * by the primary's sink and the mirror's bootstrap. SDK-free: it reads the
 * fields every AWS SDK v3 error carries (`name`, `$metadata.httpStatusCode`,
 * `$retryable`), so shared needs no SDK dependency. The SDK's own retries run
 * inside each attempt; this outer loop rides out longer outages (a throttled
 * prefix, an endpoint restarting) before the caller gives up.
 */
import type { Logger } from '../daemon/logger.js';
import { metasyncError } from '../errors.js';

export interface S3RetryPolicy {
  /** Total attempts, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_S3_RETRY: S3RetryPolicy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 5_000 };

export interface S3CallContext {
  /** S3 operation, e.g. `PutObject`. */
  operation: string;
  bucket: string;
  key: string;
}

export interface S3RetryOptions extends S3CallContext {
  policy?: S3RetryPolicy;
  /** Injected so tests run retries under fake timers or instantly. */
  sleep?: (ms: number) => Promise<void>;
  /** Called before each retry, for logging. */
  onRetry?: (info: { attempt: number; delayMs: number; err: unknown }) => void;
}

interface AwsErrorShape {
  name?: unknown;
  code?: unknown;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

const RETRYABLE_NAMES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'InternalError',
  'ServiceUnavailable',
  'TimeoutError',
  'ConditionalRequestConflict',
]);
const RETRYABLE_ERRNOS = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET']);

/** HTTP status of an SDK error, if it got a response. */
export function s3StatusOf(err: unknown): number | undefined {
  const status = (err as AwsErrorShape | null)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

/** The S3 error name (`NoSuchKey`, `PreconditionFailed`, ...), if any. */
export function s3ErrorName(err: unknown): string | undefined {
  const name = (err as AwsErrorShape | null)?.name;
  return typeof name === 'string' ? name : undefined;
}

/** True for throttling, 5xx and network failures; false for every other 4xx (AccessDenied, NoSuchBucket...). */
export function isRetryableS3Error(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const shape = err as AwsErrorShape;
  if (shape.$retryable !== undefined && shape.$retryable !== null) return true;
  const name = s3ErrorName(err);
  if (name !== undefined && RETRYABLE_NAMES.has(name)) return true;
  if (typeof shape.code === 'string' && RETRYABLE_ERRNOS.has(shape.code)) return true;
  const status = s3StatusOf(err);
  if (status === undefined) return name !== undefined && /network|socket|timeout/i.test(name);
  return status === 429 || status >= 500;
}

/** Full-jitter backoff: uniform in [0, min(max, base * 2^attempt)]. */
export function s3BackoffMs(policy: S3RetryPolicy, attempt: number, random: () => number = Math.random): number {
  return Math.round(random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt));
}

const realSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `call` until it succeeds, fails with a non-retryable error, or runs out
 * of attempts; then throws METASYNC_ERR_S3_CALL_FAILED naming bucket and key.
 * Errors the caller expects (NotFound on a HEAD) are the caller's to catch
 * inside `call`: they are not retried because they are 4xx.
 */
export async function withS3Retry<T>(call: () => Promise<T>, options: S3RetryOptions): Promise<T> {
  const policy = options.policy ?? DEFAULT_S3_RETRY;
  const sleep = options.sleep ?? realSleep;
  let lastErr: unknown;
  let attempt = 0;
  for (; attempt < Math.max(1, policy.attempts); attempt++) {
    if (attempt > 0) {
      const delayMs = s3BackoffMs(policy, attempt);
      options.onRetry?.({ attempt, delayMs, err: lastErr });
      await sleep(delayMs);
    }
    try {
      return await call();
    } catch (err) {
      lastErr = err;
      if (!isRetryableS3Error(err)) {
        attempt++;
        break;
      }
    }
  }
  throw s3CallFailed(options, lastErr, attempt);
}

/** One bucket's calls, each retried by `withS3Retry`: `retrying('GetObject', key, () => client.send(...))`. */
export type S3Retrier = <T>(operation: string, key: string, call: () => Promise<T>) => Promise<T>;

/** The retry wrapper both daemons put around their calls to one bucket: the given policy (default DEFAULT_S3_RETRY), each retry logged as a warning. */
export function createS3Retrier(options: {
  bucket: string;
  log: Logger;
  policy?: S3RetryPolicy | undefined;
  sleep?: ((ms: number) => Promise<void>) | undefined;
}): S3Retrier {
  const { bucket, log } = options;
  return (operation, key, call) =>
    withS3Retry(call, {
      operation,
      bucket,
      key,
      policy: options.policy ?? DEFAULT_S3_RETRY,
      ...(options.sleep === undefined ? {} : { sleep: options.sleep }),
      onRetry: ({ attempt, delayMs, err }) => log.warn({ err, operation, bucket, key, attempt, delayMs }, 's3 call retrying'),
    });
}

export function s3CallFailed(context: S3CallContext, err: unknown, attempts: number): Error {
  const name = s3ErrorName(err) ?? 'Error';
  const status = s3StatusOf(err);
  const reason = err instanceof Error ? err.message : String(err);
  return metasyncError(
    'METASYNC_ERR_S3_CALL_FAILED',
    `S3 ${context.operation} s3://${context.bucket}/${context.key} failed after ${attempts} attempt(s): ${name}${status === undefined ? '' : ` (HTTP ${status})`}: ${reason}`,
    { operation: context.operation, bucket: context.bucket, key: context.key, attempts, awsError: name, status: status ?? null },
    err,
  );
}
