import { z } from 'zod';
import { pathDeletionSchema, pathEntrySchema, type PathDeletion, type PathEntry } from '@metasync/shared';
import { encodeRecord } from '@metasync/shared/fs';

/**
 * Which ingest published a path; the watcher and the upstream follower each reconcile only their own
 * paths. `pins`: the dist pins (dists/pins.ts).
 */
export type Origin = 'watch' | 'api' | 'upstream' | 'pins';

/** A change as the journal stores it: the protocol entry plus its (internal) origin. */
export type JournalEntry = (PathEntry | PathDeletion) & { origin: Origin };

/** One committed generation: one journal record. */
export interface JournalGeneration {
  seq: number;
  /** Commit time, ms; the mtime of every entry. */
  time: number;
  entries: JournalEntry[];
}

const origin = z.enum(['watch', 'api', 'upstream', 'pins']);
const journalGenerationSchema = z.object({
  seq: z.number().int().positive(),
  time: z.number().int().nonnegative(),
  entries: z.array(z.union([pathEntrySchema.extend({ origin }), pathDeletionSchema.extend({ origin })])),
});

export function encodeGeneration(generation: JournalGeneration): Buffer {
  return encodeRecord(Buffer.from(JSON.stringify(generation)));
}

/** Parses one record payload; undefined when it is not a generation (e.g. a zero-filled tail). */
export function parseGeneration(payload: Buffer): JournalGeneration | undefined {
  if (payload.length === 0) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  const parsed = journalGenerationSchema.safeParse(json);
  return parsed.success ? (parsed.data as JournalGeneration) : undefined;
}

/** Strips the internal origin: what mirrors see. */
export function publicEntry(entry: JournalEntry): PathEntry | PathDeletion {
  if ('deleted' in entry) return { path: entry.path, deleted: true, mtime: entry.mtime };
  return { path: entry.path, sha256: entry.sha256, size: entry.size, mtime: entry.mtime };
}
