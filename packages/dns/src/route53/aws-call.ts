import { metasyncError } from '@metasync/shared';
import type { Clock } from '../registrar.js';

/** Route53 says "slow down" with these; they are normal and retried with backoff. */
const RETRYABLE_NAMES = new Set([
  'Throttling',
  'ThrottlingException',
  'PriorRequestNotComplete',
  'ServiceUnavailable',
  'InternalFailure',
  'TimeoutError',
]);
const RETRYABLE_ERRNOS = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT']);

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 8, baseDelayMs: 200, maxDelayMs: 10_000 };

export function awsErrorName(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const name = (err as { name?: unknown }).name;
  return typeof name === 'string' ? name : undefined;
}

export function isAwsError(err: unknown, name: string): boolean {
  return awsErrorName(err) === name;
}

function isRetryable(err: unknown): boolean {
  const name = awsErrorName(err);
  if (name !== undefined && RETRYABLE_NAMES.has(name)) return true;
  const errno = (err as { code?: unknown } | null)?.code;
  if (typeof errno === 'string' && RETRYABLE_ERRNOS.has(errno)) return true;
  const status = (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
  return typeof status === 'number' && status >= 500;
}

export interface AwsCallContext {
  /** Names the call and its record or check in errors, e.g. `DeleteHealthCheck 1234-...`. */
  what: string;
  details: Record<string, unknown>;
  retry: RetryPolicy;
  clock: Clock;
  /** AWS error names the caller handles itself (e.g. NoSuchHealthCheck): rethrown as they are. */
  passThrough?: readonly string[];
}

/**
 * Runs one AWS call: throttling-type errors are retried with exponential
 * backoff (half fixed, half random), the names in `passThrough` are rethrown for the
 * caller, anything else becomes METASYNC_ERR_DNS_CALL_FAILED naming the call.
 */
export async function awsCall<T>(context: AwsCallContext, call: () => Promise<T>): Promise<T> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= context.retry.maxAttempts; attempt++) {
    try {
      return await call();
    } catch (err) {
      const name = awsErrorName(err);
      if (name !== undefined && context.passThrough?.includes(name) === true) throw err;
      if (!isRetryable(err)) {
        throw metasyncError(
          'METASYNC_ERR_DNS_CALL_FAILED',
          `${context.what} failed: ${name ?? 'Error'}: ${messageOf(err)}`,
          { ...context.details, awsError: name },
          err,
        );
      }
      lastError = err;
      if (attempt === context.retry.maxAttempts) break;
      const ceilingMs = Math.min(context.retry.maxDelayMs, context.retry.baseDelayMs * 2 ** (attempt - 1));
      await context.clock.sleep(Math.round(ceilingMs / 2 + (Math.random() * ceilingMs) / 2));
    }
  }
  throw metasyncError(
    'METASYNC_ERR_DNS_CALL_FAILED',
    `${context.what} still failing after ${context.retry.maxAttempts} attempts: ${awsErrorName(lastError) ?? 'Error'}: ${messageOf(lastError)}`,
    { ...context.details, awsError: awsErrorName(lastError), attempts: context.retry.maxAttempts },
    lastError,
  );
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
