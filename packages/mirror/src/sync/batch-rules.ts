import { metasyncError, type ChangesBatch, type MetasyncError } from '@metasync/shared';

/**
 * What the mirror accepts from the primary, given the seq it has applied: pure
 * rules (no I/O), run after a document's signature verified. A signed document
 * can still be an old one replayed (rollback) or one that does not fit the
 * applied seq; these rules are the mirror's only defence against both.
 *
 *   changes batch (from, to], head     applied = A
 *     to < A or head < A     -> refuse  ROLLBACK  (never go back)
 *     to = A, head > A       -> refuse  PROTOCOL  (empty although behind)
 *     to = A, head = A       -> caught up
 *     from != A              -> refuse  PROTOCOL  (gap or overlap)
 *     otherwise              -> apply; more while to < head
 *
 *   snapshot at S            S < A -> refuse ROLLBACK; S = A -> current; S > A -> apply
 */

/** Why a document or answer is refused: the error the sync run fails with. */
export interface Refusal {
  action: 'refuse';
  code: 'METASYNC_ERR_SYNC_ROLLBACK' | 'METASYNC_ERR_SYNC_PROTOCOL';
  message: string;
  details?: Record<string, unknown>;
}

export type BatchVerdict = { action: 'apply'; more: boolean } | { action: 'caught-up' } | Refusal;

export type SnapshotVerdict = { action: 'apply' } | { action: 'current' } | Refusal;

/** A signed changes batch against the applied seq: apply it, nothing to do, or refuse it. */
export function judgeChangesBatch(batch: Pick<ChangesBatch, 'from' | 'to' | 'head'>, appliedSeq: number): BatchVerdict {
  const { from, to, head } = batch;
  if (to < appliedSeq || head < appliedSeq) {
    return rollback(`primary offered seq ${to} (head ${head}) below applied seq ${appliedSeq}`, { to, head, applied: appliedSeq });
  }
  if (to === appliedSeq) {
    // The primary always includes at least one generation when its head is ahead: an empty
    // batch below the head would leave the mirror behind with nothing to say why.
    if (head > appliedSeq) return protocol(`changes since ${appliedSeq} are empty although the head is ${head}`);
    return { action: 'caught-up' };
  }
  if (from !== appliedSeq) return protocol(`batch (${from}, ${to}] does not start at applied seq ${appliedSeq}`);
  return { action: 'apply', more: to < head };
}

/** A signed snapshot against the applied seq: an older one is a rollback, the same one needs nothing. */
export function judgeSnapshot(snapshotSeq: number, appliedSeq: number): SnapshotVerdict {
  if (snapshotSeq < appliedSeq) {
    return rollback(`snapshot at seq ${snapshotSeq} is older than applied seq ${appliedSeq}`, { snapshotSeq, applied: appliedSeq });
  }
  return snapshotSeq === appliedSeq ? { action: 'current' } : { action: 'apply' };
}

/**
 * A changes request answered neither 200 nor 410: a rollback when the primary's
 * last confirmed state was below the applied seq (it restarted from an old
 * backup, say), otherwise an answer outside the protocol.
 */
export function judgeFailedChanges(options: { sinceSeq: number; httpStatus: number; primaryBehindSeq: number | undefined }): Refusal {
  const { sinceSeq, httpStatus, primaryBehindSeq } = options;
  if (primaryBehindSeq !== undefined) {
    return rollback(`primary is at seq ${primaryBehindSeq}, below applied seq ${sinceSeq}`, {
      primarySeq: primaryBehindSeq,
      applied: sinceSeq,
    });
  }
  return protocol(`changes since ${sinceSeq} answered HTTP ${httpStatus}`);
}

/** A confirmed state below what was applied when it was asked for: the primary went back, the mirror does not follow. */
export function isPrimaryBehind(stateSeq: number, appliedWhenAskedSeq: number): boolean {
  return stateSeq < appliedWhenAskedSeq;
}

/** The error a sync run fails with for a refusal. */
export function refusalError(refusal: Refusal): MetasyncError {
  return metasyncError(refusal.code, refusal.message, refusal.details);
}

export function protocolError(message: string): MetasyncError {
  return metasyncError('METASYNC_ERR_SYNC_PROTOCOL', message);
}

function rollback(message: string, details: Record<string, unknown>): Refusal {
  return { action: 'refuse', code: 'METASYNC_ERR_SYNC_ROLLBACK', message, details };
}

function protocol(message: string): Refusal {
  return { action: 'refuse', code: 'METASYNC_ERR_SYNC_PROTOCOL', message };
}
