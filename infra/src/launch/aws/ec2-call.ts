import { metasyncError } from '@metasync/shared';

export function awsErrorName(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const name = (err as { name?: unknown }).name;
  return typeof name === 'string' ? name : undefined;
}

/**
 * Runs one EC2 call. Throttling (RequestLimitExceeded), 5xx and dropped
 * connections are retried by the SDK's own standard retry; what still fails
 * becomes METASYNC_ERR_EC2_CALL_FAILED naming the call, except the AWS error
 * names in `passThrough`, which the caller handles itself.
 */
export async function ec2Call<T>(
  context: { what: string; details: Record<string, unknown>; passThrough?: readonly string[] },
  call: () => Promise<T>,
): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const name = awsErrorName(err);
    if (name !== undefined && context.passThrough?.includes(name) === true) throw err;
    throw metasyncError(
      'METASYNC_ERR_EC2_CALL_FAILED',
      `${context.what} failed: ${name ?? 'Error'}: ${err instanceof Error ? err.message : String(err)}`,
      { ...context.details, awsError: name },
      err,
    );
  }
}
