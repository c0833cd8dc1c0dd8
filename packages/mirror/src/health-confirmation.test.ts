import { afterEach, describe, expect, it, vi } from 'vitest';
import { armConfirmation, assessFreshness, createSyncStatus, noteConfirmed, noteHead, noteStateRefused } from './health.js';

/** The freeze defence's rule: a nonce-confirmed signed state within maxUnconfirmedMs, on the monotonic clock. */
const limits = { maxLagSeq: 5, maxLagMs: 10_000, maxUnconfirmedMs: 3_000 };

afterEach(() => {
  vi.useRealTimers();
});

function fakeClockStatus(): { status: ReturnType<typeof createSyncStatus>; advance(ms: number): void } {
  let monoMs = 1_000;
  return { status: createSyncStatus({ monoNowMs: () => monoMs }), advance: (ms) => (monoMs += ms) };
}

describe('freshness: signed state confirmation (freeze defence)', () => {
  it('stays fresh while confirmations keep coming, and turns stale once the last is older than the bound', () => {
    const { status, advance } = fakeClockStatus();
    armConfirmation(status);
    noteHead(status, 7, 7, 0);
    noteConfirmed(status, 7);
    advance(3_000);
    expect(assessFreshness(status, 7, 0, limits)).toMatchObject({ fresh: true });
    advance(1);
    const stale = assessFreshness(status, 7, 0, limits);
    expect(stale.fresh).toBe(false);
    expect(stale.reason).toBe('primary signed state not confirmed for 3.0 s (bound 3.0 s; last confirmed at head 7)');
    noteConfirmed(status, 8);
    expect(assessFreshness(status, 7, 0, limits).fresh).toBe(true);
  });

  it('gives a starting mirror the bound for its first confirmation, then says it never had one', () => {
    const { status, advance } = fakeClockStatus();
    noteHead(status, 3, 3, 0);
    advance(60_000);
    expect(assessFreshness(status, 3, 0, limits).fresh).toBe(true);
    armConfirmation(status);
    advance(2_999);
    expect(assessFreshness(status, 3, 0, limits).fresh).toBe(true);
    advance(2_000);
    expect(assessFreshness(status, 3, 0, limits).reason).toMatch(
      /not confirmed for 5\.0 s \(bound 3\.0 s; never confirmed since sync start\)/,
    );
  });

  it('re-arming does not reset an old confirmation', () => {
    const { status, advance } = fakeClockStatus();
    armConfirmation(status);
    noteConfirmed(status, 1);
    noteHead(status, 1, 1, 0);
    advance(5_000);
    armConfirmation(status);
    expect(assessFreshness(status, 1, 0, limits).fresh).toBe(false);
  });

  it('lists both reasons when the primary is silent and unconfirmed, with the last error once', () => {
    const { status, advance } = fakeClockStatus();
    armConfirmation(status);
    noteHead(status, 4, 4, 1_000);
    noteConfirmed(status, 4);
    status.lastError = 'METASYNC_ERR_SYNC_UNREACHABLE';
    advance(40_000);
    const freshness = assessFreshness(status, 4, 41_000, limits);
    expect(freshness.fresh).toBe(false);
    expect(freshness.reason).toBe(
      'primary silent for 40000 ms (max 10000); last error: METASYNC_ERR_SYNC_UNREACHABLE; primary signed state not confirmed for 40 s (bound 3.0 s; last confirmed at head 4)',
    );
  });

  it('names the refusal when replayed answers keep the mirror hearing from the primary, until a confirmation', () => {
    const { status, advance } = fakeClockStatus();
    armConfirmation(status);
    noteConfirmed(status, 9);
    advance(4_000);
    noteHead(status, 9, 9, 50_000);
    status.lastError = 'METASYNC_ERR_SYNC_CHALLENGE_FAILED';
    noteStateRefused(status, 'METASYNC_ERR_SYNC_CHALLENGE_FAILED');
    expect(assessFreshness(status, 9, 50_000, limits).reason).toBe(
      'primary signed state not confirmed for 4.0 s (bound 3.0 s; last confirmed at head 9; answers refused: METASYNC_ERR_SYNC_CHALLENGE_FAILED)',
    );
    status.lastError = 'METASYNC_ERR_SYNC_UNREACHABLE';
    expect(assessFreshness(status, 9, 50_000, limits).reason).toMatch(
      /answers refused: METASYNC_ERR_SYNC_CHALLENGE_FAILED\); last error: METASYNC_ERR_SYNC_UNREACHABLE$/,
    );
    noteConfirmed(status, 10);
    advance(3_500);
    expect(assessFreshness(status, 9, 50_000, limits).reason).not.toMatch(/answers refused/);
  });

  it('drops a head heard before the challenge and above the confirmed seq, but keeps one heard meanwhile', () => {
    const { status } = fakeClockStatus();
    armConfirmation(status);
    noteHead(status, 500, 5, 0);
    noteConfirmed(status, 5, 500);
    expect(status.headSeq).toBe(5);
    noteHead(status, 600, 5, 0);
    const headWhenAsked = status.headSeq;
    noteHead(status, 700, 5, 0);
    noteConfirmed(status, 6, headWhenAsked);
    expect(status.headSeq).toBe(700);
  });

  it('is off with a bound of 0', () => {
    const { status, advance } = fakeClockStatus();
    armConfirmation(status);
    noteHead(status, 2, 2, 0);
    advance(1_000_000);
    expect(assessFreshness(status, 2, 0, { ...limits, maxUnconfirmedMs: 0 }).fresh).toBe(true);
  });

  it('measures on the monotonic clock, so a wall-clock jump of an hour changes nothing', () => {
    vi.useFakeTimers({ toFake: ['performance', 'Date'], now: 1_000_000 });
    const status = createSyncStatus();
    armConfirmation(status);
    noteHead(status, 5, 5, Date.now());
    noteConfirmed(status, 5);
    vi.setSystemTime(Date.now() + 3_600_000);
    expect(assessFreshness(status, 5, Date.now() - 3_600_000, limits).fresh).toBe(true);
    vi.advanceTimersByTime(3_001);
    expect(assessFreshness(status, 5, Date.now() - 3_600_000, limits).reason).toMatch(/not confirmed for 3\.0 s/);
  });
});
