import type { z } from 'zod';
import { metasyncError } from '@metasync/shared';

/**
 * Parses a sync document (batch, snapshot, state, key set) against its schema.
 * Bad JSON and a wrong shape are both METASYNC_ERR_SYNC_PROTOCOL naming the
 * document, with the schema's first complaints (bounded: a hostile document
 * must not make a huge log line).
 */
export function parseSyncDocument<T>(body: Buffer, schema: z.ZodType<T>, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `${what} is not JSON`, { what }, err);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
    throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `${what} has the wrong shape: ${issues.slice(0, 500)}`, { what });
  }
  return parsed.data;
}
