import { describe, expect, it, vi } from 'vitest';
import { isMetasyncError } from '../errors.js';
import { createS3Retrier, isRetryableS3Error, s3BackoffMs, withS3Retry } from './s3-retry.js';

function awsError(name: string, status?: number): Error {
  return Object.assign(new Error(`${name} happened`), { name, $metadata: status === undefined ? {} : { httpStatusCode: status } });
}

const context = { operation: 'PutObject', bucket: 'b', key: 'objects/ab/cd' };
const noSleep = (): Promise<void> => Promise.resolve();

describe('withS3Retry', () => {
  it('retries throttling and 5xx, then returns the first success', async () => {
    const call = vi
      .fn<() => Promise<string>>()
      .mockRejectedValueOnce(awsError('SlowDown', 503))
      .mockRejectedValueOnce(awsError('InternalError', 500))
      .mockResolvedValueOnce('ok');
    const onRetry = vi.fn();
    await expect(withS3Retry(call, { ...context, sleep: noSleep, onRetry })).resolves.toBe('ok');
    expect(call).toHaveBeenCalledTimes(3);
    expect(onRetry).toHaveBeenCalledTimes(2);
  });

  it('gives up at once on AccessDenied with METASYNC_ERR_S3_CALL_FAILED naming bucket and key', async () => {
    const call = vi.fn(() => Promise.reject(awsError('AccessDenied', 403)));
    const err: unknown = await withS3Retry(call, { ...context, sleep: noSleep }).catch((e: unknown) => e);
    expect(call).toHaveBeenCalledTimes(1);
    expect(isMetasyncError(err, 'METASYNC_ERR_S3_CALL_FAILED')).toBe(true);
    expect((err as Error).message).toContain('s3://b/objects/ab/cd');
    expect((err as Error).message).toContain('AccessDenied (HTTP 403)');
  });

  it('stops after the policy attempts on a persistent network error', async () => {
    const call = vi.fn(() => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })));
    const err: unknown = await withS3Retry(call, {
      ...context,
      sleep: noSleep,
      policy: { attempts: 3, baseDelayMs: 1, maxDelayMs: 1 },
    }).catch((e: unknown) => e);
    expect(call).toHaveBeenCalledTimes(3);
    expect((err as Error).message).toContain('after 3 attempt(s)');
  });

  it('waits with backoff between attempts under fake timers', async () => {
    vi.useFakeTimers();
    try {
      const call = vi.fn<() => Promise<string>>().mockRejectedValueOnce(awsError('SlowDown', 503)).mockResolvedValueOnce('ok');
      const pending = withS3Retry(call, { ...context, policy: { attempts: 2, baseDelayMs: 1000, maxDelayMs: 1000 } });
      await vi.advanceTimersByTimeAsync(0);
      expect(call).toHaveBeenCalledTimes(1);
      await vi.advanceTimersByTimeAsync(1000);
      await expect(pending).resolves.toBe('ok');
      expect(call).toHaveBeenCalledTimes(2);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('isRetryableS3Error', () => {
  it('classifies by status, name and errno', () => {
    expect(isRetryableS3Error(awsError('NoSuchKey', 404))).toBe(false);
    expect(isRetryableS3Error(awsError('PreconditionFailed', 412))).toBe(false);
    expect(isRetryableS3Error(awsError('Whatever', 429))).toBe(true);
    expect(isRetryableS3Error(awsError('TimeoutError'))).toBe(true);
    expect(isRetryableS3Error(awsError('AbortError'))).toBe(false);
    expect(isRetryableS3Error('string')).toBe(false);
  });

  it('bounds the backoff by maxDelayMs', () => {
    const policy = { attempts: 10, baseDelayMs: 100, maxDelayMs: 500 };
    expect(s3BackoffMs(policy, 8, () => 1)).toBe(500);
    expect(s3BackoffMs(policy, 1, () => 1)).toBe(200);
    expect(s3BackoffMs(policy, 3, () => 0)).toBe(0);
  });
});

describe('createS3Retrier', () => {
  it("retries one bucket's calls with the given policy and logs each retry as a warning naming operation, bucket and key", async () => {
    const warn = vi.fn();
    const log = { warn } as unknown as Parameters<typeof createS3Retrier>[0]['log'];
    const retrying = createS3Retrier({ bucket: 'b', log, policy: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 }, sleep: noSleep });
    const call = vi.fn<() => Promise<string>>().mockRejectedValueOnce(awsError('SlowDown', 503)).mockResolvedValueOnce('ok');
    await expect(retrying('GetObject', 'snapshots/1.json', call)).resolves.toBe('ok');
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledWith(
      expect.objectContaining({ operation: 'GetObject', bucket: 'b', key: 'snapshots/1.json', attempt: 1 }),
      's3 call retrying',
    );
    const failing = vi.fn(() => Promise.reject(awsError('SlowDown', 503)));
    const err: unknown = await retrying('PutObject', 'k', failing).catch((e: unknown) => e);
    expect(failing).toHaveBeenCalledTimes(2);
    expect(isMetasyncError(err, 'METASYNC_ERR_S3_CALL_FAILED')).toBe(true);
  });
});
