import { describe, expect, it } from 'vitest';
import type { Clock } from '../registrar.js';
import { awsCall } from './aws-call.js';

const awsError = (name: string, status = 400): Error =>
  Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode: status } });

describe('awsCall', () => {
  const slept: number[] = [];
  const clock: Clock = {
    now: () => 0,
    sleep: (ms) => {
      slept.push(ms);
      return Promise.resolve();
    },
  };
  const context = {
    what: 'GetChange C1',
    details: { changeId: 'C1' },
    retry: { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 250 },
    clock,
  };

  it('retries throttling, PriorRequestNotComplete, 5xx and dropped connections with capped, growing delays', async () => {
    slept.length = 0;
    const failures = [
      awsError('Throttling'),
      awsError('PriorRequestNotComplete'),
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
    ];
    let calls = 0;
    const result = await awsCall(context, () => {
      const failure = failures[calls++];
      return failure === undefined ? Promise.resolve('ok') : Promise.reject(failure);
    });
    expect(result).toBe('ok');
    expect(calls).toBe(4);
    expect(slept).toHaveLength(3);
    expect(slept[0]).toBeGreaterThanOrEqual(50);
    expect(slept[0]).toBeLessThanOrEqual(100);
    expect(slept[2]).toBeGreaterThanOrEqual(125);
    expect(slept[2]).toBeLessThanOrEqual(250);
    let serverErrors = 0;
    await expect(
      awsCall(context, () => (serverErrors++ === 0 ? Promise.reject(awsError('InternalError', 503)) : Promise.resolve('ok'))),
    ).resolves.toBe('ok');
  });

  it('rethrows pass-through names untouched and wraps anything else at once', async () => {
    let calls = 0;
    await expect(
      awsCall({ ...context, passThrough: ['NoSuchHealthCheck'] }, () => Promise.reject(awsError('NoSuchHealthCheck'))),
    ).rejects.toMatchObject({ name: 'NoSuchHealthCheck' });
    await expect(
      awsCall(context, () => {
        calls++;
        return Promise.reject(awsError('InvalidInput'));
      }),
    ).rejects.toMatchObject({
      code: 'METASYNC_ERR_DNS_CALL_FAILED',
      message: 'GetChange C1 failed: InvalidInput: InvalidInput happened',
      details: { changeId: 'C1', awsError: 'InvalidInput' },
    });
    expect(calls).toBe(1);
  });

  it('gives up after maxAttempts naming the call and the last error', async () => {
    await expect(awsCall(context, () => Promise.reject(awsError('Throttling')))).rejects.toMatchObject({
      code: 'METASYNC_ERR_DNS_CALL_FAILED',
      message: 'GetChange C1 still failing after 4 attempts: Throttling: Throttling happened',
      details: { attempts: 4 },
    });
  });
});
