import type { z } from 'zod';
import { metasyncError, pathEntrySchema, snapshotSchema, type PathEntry, type Snapshot } from '@metasync/shared';
import { decodeLinedJson, parseLinedJsonHead } from '@metasync/shared/fs';

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

const snapshotHeadSchema = snapshotSchema.omit({ entries: true });

/**
 * A Snapshot, checked as parseSyncDocument checks it. One written an entry per
 * line (what the primary writes, docs/protocol.md) is read a line at a time,
 * each entry checked alone: at a million paths that spares a ~150 MB string and
 * a second copy of every entry that parsing the whole and then the schema made.
 * Any other layout is parsed whole.
 */
export function parseSnapshotDocument(body: Buffer, what: string): Snapshot {
  const entries: PathEntry[] = [];
  let firstProblem: string | undefined;
  let head;
  try {
    head = decodeLinedJson(body, (item, index) => {
      const parsed = pathEntrySchema.safeParse(item);
      if (parsed.success) entries.push(parsed.data);
      else
        firstProblem ??= `entries.${index}: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`;
    });
  } catch (err) {
    throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `${what} is not JSON`, { what }, err);
  }
  if (head === undefined) return parseSyncDocument(body, snapshotSchema, what);
  const parsedHead = snapshotHeadSchema.safeParse(parseLinedJsonHead(head));
  if (!parsedHead.success) firstProblem ??= parsedHead.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
  if (firstProblem !== undefined || !parsedHead.success) {
    throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `${what} has the wrong shape: ${(firstProblem ?? '').slice(0, 500)}`, { what });
  }
  return { ...parsedHead.data, entries };
}
