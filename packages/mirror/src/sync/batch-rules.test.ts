import { describe, expect, it } from 'vitest';
import { isMetasyncError } from '@metasync/shared';
import { isPrimaryBehind, judgeChangesBatch, judgeFailedChanges, judgeSnapshot, refusalError } from './batch-rules.js';

describe('changes batch rules', () => {
  it('applies a batch that starts at the applied seq, and asks for more while it ends below the head', () => {
    expect(judgeChangesBatch({ from: 5, to: 7, head: 9 }, 5)).toEqual({ action: 'apply', more: true });
  });

  it('applies a batch that reaches the head and asks for no more', () => {
    expect(judgeChangesBatch({ from: 5, to: 9, head: 9 }, 5)).toEqual({ action: 'apply', more: false });
  });

  it('is caught up on an empty batch at the head', () => {
    expect(judgeChangesBatch({ from: 5, to: 5, head: 5 }, 5)).toEqual({ action: 'caught-up' });
  });

  it('refuses an empty batch while the head is ahead of the applied seq', () => {
    expect(judgeChangesBatch({ from: 5, to: 5, head: 6 }, 5)).toEqual({
      action: 'refuse',
      code: 'METASYNC_ERR_SYNC_PROTOCOL',
      message: 'changes since 5 are empty although the head is 6',
    });
  });

  it('refuses as a rollback a batch ending below the applied seq', () => {
    expect(judgeChangesBatch({ from: 2, to: 4, head: 9 }, 5)).toEqual({
      action: 'refuse',
      code: 'METASYNC_ERR_SYNC_ROLLBACK',
      message: 'primary offered seq 4 (head 9) below applied seq 5',
      details: { to: 4, head: 9, applied: 5 },
    });
  });

  it('refuses as a rollback a batch whose head is below the applied seq, even if it ends above it', () => {
    const verdict = judgeChangesBatch({ from: 5, to: 6, head: 4 }, 5);
    expect(verdict).toMatchObject({ action: 'refuse', code: 'METASYNC_ERR_SYNC_ROLLBACK', details: { to: 6, head: 4, applied: 5 } });
  });

  it('refuses as a rollback an empty batch whose head is below the applied seq (not as caught up)', () => {
    expect(judgeChangesBatch({ from: 5, to: 5, head: 3 }, 5)).toMatchObject({ action: 'refuse', code: 'METASYNC_ERR_SYNC_ROLLBACK' });
  });

  it('refuses a batch that starts after the applied seq (a gap)', () => {
    expect(judgeChangesBatch({ from: 6, to: 8, head: 8 }, 5)).toEqual({
      action: 'refuse',
      code: 'METASYNC_ERR_SYNC_PROTOCOL',
      message: 'batch (6, 8] does not start at applied seq 5',
    });
  });

  it('refuses a batch that starts before the applied seq (an overlap)', () => {
    expect(judgeChangesBatch({ from: 4, to: 8, head: 8 }, 5)).toMatchObject({ action: 'refuse', code: 'METASYNC_ERR_SYNC_PROTOCOL' });
  });

  it('applies the first batch of an empty mirror', () => {
    expect(judgeChangesBatch({ from: 0, to: 1, head: 1 }, 0)).toEqual({ action: 'apply', more: false });
  });
});

describe('snapshot rules', () => {
  it('applies a snapshot newer than the applied seq', () => {
    expect(judgeSnapshot(8, 5)).toEqual({ action: 'apply' });
  });

  it('has nothing to do for a snapshot at the applied seq', () => {
    expect(judgeSnapshot(5, 5)).toEqual({ action: 'current' });
  });

  it('refuses as a rollback a snapshot older than the applied seq', () => {
    expect(judgeSnapshot(4, 5)).toEqual({
      action: 'refuse',
      code: 'METASYNC_ERR_SYNC_ROLLBACK',
      message: 'snapshot at seq 4 is older than applied seq 5',
      details: { snapshotSeq: 4, applied: 5 },
    });
  });
});

describe('failed changes answers', () => {
  it('is a rollback when the primary last confirmed a state below the applied seq', () => {
    expect(judgeFailedChanges({ sinceSeq: 5, httpStatus: 500, primaryBehindSeq: 3 })).toEqual({
      action: 'refuse',
      code: 'METASYNC_ERR_SYNC_ROLLBACK',
      message: 'primary is at seq 3, below applied seq 5',
      details: { primarySeq: 3, applied: 5 },
    });
  });

  it('is a protocol error naming the HTTP status otherwise', () => {
    expect(judgeFailedChanges({ sinceSeq: 5, httpStatus: 503, primaryBehindSeq: undefined })).toEqual({
      action: 'refuse',
      code: 'METASYNC_ERR_SYNC_PROTOCOL',
      message: 'changes since 5 answered HTTP 503',
    });
  });
});

describe('confirmed state', () => {
  it('counts the primary as behind only when its seq is below what was applied when asked', () => {
    expect(isPrimaryBehind(4, 5)).toBe(true);
    expect(isPrimaryBehind(5, 5)).toBe(false);
    expect(isPrimaryBehind(6, 5)).toBe(false);
  });
});

describe('refusal errors', () => {
  it('carries the refusal code, message and details', () => {
    const err = refusalError({ action: 'refuse', code: 'METASYNC_ERR_SYNC_ROLLBACK', message: 'went back', details: { applied: 5 } });
    expect(isMetasyncError(err, 'METASYNC_ERR_SYNC_ROLLBACK')).toBe(true);
    expect(err.message).toBe('went back');
    expect(err.details).toEqual({ applied: 5 });
  });
});
