import { describe, expect, it } from 'vitest';
import { assessFreshness, createSyncStatus, noteApplied, noteHead } from './health.js';

const limits = { maxLagSeq: 5, maxLagMs: 1_000 };

describe('freshness', () => {
  it('is stale before the primary was ever heard from', () => {
    expect(assessFreshness(createSyncStatus(), 0, 0, limits)).toMatchObject({ fresh: false, reason: 'primary never heard from' });
  });

  it('is fresh when caught up and recently heard from', () => {
    const status = createSyncStatus();
    noteHead(status, 7, 7, 1_000);
    expect(assessFreshness(status, 7, 1_500, limits)).toMatchObject({ fresh: true, lagSeq: 0, lagMs: 0 });
  });

  it('turns stale once the primary has been silent longer than the lag', () => {
    const status = createSyncStatus();
    noteHead(status, 7, 7, 1_000);
    expect(assessFreshness(status, 7, 2_000, limits).fresh).toBe(true);
    expect(assessFreshness(status, 7, 2_001, limits)).toMatchObject({ fresh: false });
    expect(assessFreshness(status, 7, 2_001, limits).reason).toMatch(/silent for 1001 ms/);
  });

  it('turns stale when behind by more than the seq lag', () => {
    const status = createSyncStatus();
    noteHead(status, 20, 14, 1_000);
    expect(assessFreshness(status, 14, 1_000, limits)).toMatchObject({ fresh: false, lagSeq: 6 });
  });

  it('measures time behind from when the mirror first heard of a newer head', () => {
    const status = createSyncStatus();
    noteHead(status, 3, 3, 0);
    noteHead(status, 4, 3, 100);
    noteHead(status, 5, 3, 900);
    expect(assessFreshness(status, 3, 1_000, limits)).toMatchObject({ fresh: true, lagMs: 900 });
    noteHead(status, 5, 3, 1_150);
    expect(assessFreshness(status, 3, 1_200, limits)).toMatchObject({ fresh: false, lagMs: 1_100 });
    noteApplied(status, 5, 1_250);
    expect(assessFreshness(status, 5, 1_300, limits)).toMatchObject({ fresh: true, lagMs: 0 });
  });

  it('is stale while the primary reports a head below the applied seq', () => {
    const status = createSyncStatus();
    noteHead(status, 9, 9, 1_000);
    status.primaryBehindSeq = 4;
    expect(assessFreshness(status, 9, 1_000, limits).reason).toMatch(/refusing to roll back/);
  });
});
