import type { z } from 'zod';
import { metasyncError, pathEntrySchema, snapshotSchema, type PathEntry, type Snapshot } from '@metasync/shared';
import { createLoopSlices } from '@metasync/shared/daemon';
import { decodeLinedJsonInSlices, parseLinedJsonHead } from '@metasync/shared/fs';

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
  if (!parsed.success) throw wrongShape(what, issuesOf(parsed.error));
  return parsed.data;
}

function issuesOf(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
}

function wrongShape(what: string, issues: string): Error {
  return metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `${what} has the wrong shape: ${issues.slice(0, 500)}`, { what });
}

const snapshotHeadSchema = snapshotSchema.omit({ entries: true });

/**
 * A Snapshot, checked as parseSyncDocument checks it. One written an entry per
 * line (what the primary writes, docs/protocol.md) is read a line at a time,
 * each entry checked alone: at a million paths that spares a ~150 MB string and
 * a second copy of every entry that parsing the whole and then the schema made.
 * Any other layout is parsed whole.
 */
export async function parseSnapshotDocument(body: Buffer, what: string): Promise<Snapshot> {
  const entries: PathEntry[] = [];
  let firstProblem: string | undefined;
  let fields: Record<string, unknown> | undefined;
  // In slices: a million entries took 2.7 s to parse and check, and the mirror serves meanwhile.
  const slices = createLoopSlices();
  try {
    const head = await decodeLinedJsonInSlices(
      body,
      (item, index) => {
        const parsed = pathEntrySchema.safeParse(item);
        if (parsed.success) entries.push(parsed.data);
        else firstProblem ??= `entries.${index}: ${issuesOf(parsed.error)}`;
      },
      slices.turn,
    );
    fields = head === undefined ? undefined : parseLinedJsonHead(head);
  } catch (err) {
    throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `${what} is not JSON`, { what }, err);
  }
  if (fields === undefined) return parseSyncDocument(body, snapshotSchema, what);
  const parsedHead = snapshotHeadSchema.safeParse(fields);
  if (!parsedHead.success) throw wrongShape(what, issuesOf(parsedHead.error));
  if (firstProblem !== undefined) throw wrongShape(what, firstProblem);
  return { ...parsedHead.data, entries };
}
