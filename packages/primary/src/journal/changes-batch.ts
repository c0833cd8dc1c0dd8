import { DEFAULT_CHANGES_LIMIT, metasyncError, type ChangeEntry, type ChangesBatch, type ResyncResponse } from '@metasync/shared';
import type { Journal } from './journal.js';
import { publicEntry } from './record.js';

/** Past this many merged entries a batch stops at a generation boundary (bounds response size). */
export const MAX_BATCH_ENTRIES = 50_000;

/**
 * The answer to `changes?since=M`: generations (M, to] merged last-write-wins
 * into one entry per path. At most `limit` generations and about
 * MAX_BATCH_ENTRIES entries (never splitting a generation); when cut short,
 * `to < head` tells the mirror to ask again from `to`.
 */
export function buildChangesBatch(options: {
  journal: Journal;
  since: number;
  snapshotSeq: number;
  limit?: number;
  maxEntries?: number;
}): ChangesBatch {
  const { journal, since } = options;
  const limit = options.limit ?? DEFAULT_CHANGES_LIMIT;
  const maxEntries = options.maxEntries ?? MAX_BATCH_ENTRIES;
  const head = journal.headSeq();
  if (since > head) {
    throw metasyncError('METASYNC_ERR_REQUEST_INVALID', `since=${since} is ahead of the head seq ${head}`, {
      field: 'since',
      rule: 'at most head',
      since,
      head,
    });
  }
  if (since < journal.oldestSeq()) throw resyncRequired(journal, since, options.snapshotSeq);
  const merged = new Map<string, ChangeEntry>();
  let to = since;
  for (const generation of journal.generationsAfter(since, limit)) {
    if (to > since && merged.size + generation.entries.length > maxEntries) break;
    for (const entry of generation.entries) merged.set(entry.path, publicEntry(entry));
    to = generation.seq;
  }
  return { kind: 'changes', from: since, to, head, time: journal.timeOf(to) ?? journal.headTime(), entries: [...merged.values()] };
}

export function resyncRequired(journal: Journal, since: number, snapshotSeq: number): Error {
  const body: ResyncResponse = {
    code: 'METASYNC_ERR_SYNC_RESYNC_REQUIRED',
    message: `since=${since} is older than the journal keeps (oldest answerable: ${journal.oldestSeq()}); resync from the snapshot`,
    oldestSeq: journal.oldestSeq(),
    snapshotSeq,
  };
  return metasyncError(body.code, body.message, { oldestSeq: body.oldestSeq, snapshotSeq: body.snapshotSeq, since });
}

/** Parses a non-negative integer query parameter; METASYNC_ERR_REQUEST_INVALID names it otherwise. */
export function parseSeqParam(name: string, value: unknown, required: boolean): number | undefined {
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string' || !/^\d{1,15}$/.test(value)) {
    throw metasyncError(
      'METASYNC_ERR_REQUEST_INVALID',
      `query parameter ${name} must be a non-negative integer, got ${JSON.stringify(value ?? null)}`,
      {
        field: name,
        rule: 'non-negative integer',
      },
    );
  }
  return Number(value);
}
