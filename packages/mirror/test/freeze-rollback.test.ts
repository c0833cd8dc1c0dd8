import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '@metasync/shared/daemon';
import { waitFor } from '../../../test/helpers/wait-for.js';
import { loadConfig } from '../src/config.js';
import { openMirror, type Mirror } from '../src/mirror.js';
import { startFakePrimary, type FakePrimary, type SignedResponse } from './fake-primary.js';

/**
 * Rollback and freeze (docs/security.md): replays of validly signed but old
 * batches, snapshots and states, staged on a protocol-level primary.
 */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** What each wait here allows unless it says otherwise (waitFor's own default is 10 s). */
const timeoutMs = 5_000;

async function setup(extra: string[] = [], before?: (primary: FakePrimary) => void): Promise<{ primary: FakePrimary; mirror: Mirror }> {
  const primary = await startFakePrimary();
  cleanups.push(() => primary.close());
  before?.(primary);
  const dataDir = await mkdtemp(join(tmpdir(), 'mirror-freeze-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const loaded = loadConfig(
    ['--primary', primary.url, '--data', dataDir, '--poll-interval-ms', '100', '--proxy-timeout-ms', '500', '--trust-first-key', ...extra],
    {},
  );
  if (loaded.help) throw new Error('unexpected help');
  const mirror = await openMirror(loaded.config, createLogger({ name: 'test', level: 'silent' }), { defaultMetrics: false });
  cleanups.push(() => mirror.close());
  mirror.startSync('http://127.0.0.1:1');
  return { primary, mirror };
}

/** A genuine signed answer of the primary, fetched now (what an attacker on the path records). */
async function record(primary: FakePrimary, route: 'changes' | 'snapshot' | 'state', target: string): Promise<SignedResponse> {
  const before = primary.signed[route].length;
  expect((await fetch(`${primary.url}${target}`)).status).toBe(200);
  const recorded = primary.signed[route][before];
  if (recorded === undefined) throw new Error(`nothing recorded for ${target}`);
  return recorded;
}

async function body(mirror: Mirror, path: string): Promise<string> {
  const response = await mirror.app.inject({ url: path });
  expect(response.statusCode).toBe(200);
  return response.body;
}

describe('rollback', () => {
  it('refuses a replayed older signed batch, keeps serving its generation, and converges once the replay stops', async () => {
    const { primary, mirror } = await setup();
    primary.publish({ 'p2/acme/foo.json': '{"v":1}' });
    const old = await record(primary, 'changes', '/sync/v1/changes?since=0');
    primary.publish({ 'p2/acme/foo.json': '{"v":2}' });
    await waitFor(() => mirror.log.state.seq === 2, { timeoutMs, what: 'seq 2' });
    primary.faults.replayChanges = old;
    primary.publish({ 'p2/acme/foo.json': '{"v":3}' });
    await waitFor(() => mirror.status.lastError === 'METASYNC_ERR_SYNC_ROLLBACK', { timeoutMs, what: 'rollback refusal' });
    expect(mirror.log.state.seq).toBe(2);
    expect(await body(mirror, '/p2/acme/foo.json')).toBe('{"v":2}');
    delete primary.faults.replayChanges;
    await waitFor(() => mirror.log.state.seq === 3, { timeoutMs, what: 'convergence' });
    expect(await body(mirror, '/p2/acme/foo.json')).toBe('{"v":3}');
  });

  it('refuses an older signed snapshot offered by a 410 resync, and converges on a current one', async () => {
    const { primary, mirror } = await setup();
    primary.publish({ 'p2/acme/a.json': 'a1' });
    const old = await record(primary, 'snapshot', '/sync/v1/snapshot');
    primary.publish({ 'p2/acme/a.json': 'a2' });
    primary.publish({ 'p2/acme/b.json': 'b3' });
    await waitFor(() => mirror.log.state.seq === 3, { timeoutMs, what: 'seq 3' });
    primary.faults.replaySnapshot = old;
    primary.faults.oldestSeq = 4;
    primary.publish({ 'p2/acme/b.json': 'b4' });
    await waitFor(() => mirror.status.lastError === 'METASYNC_ERR_SYNC_ROLLBACK', { timeoutMs, what: 'rollback refusal' });
    expect(primary.requests.some((r) => r.startsWith('/sync/v1/snapshot'))).toBe(true);
    expect(mirror.log.state.seq).toBe(3);
    expect(await body(mirror, '/p2/acme/a.json')).toBe('a2');
    expect(await body(mirror, '/p2/acme/b.json')).toBe('b3');
    delete primary.faults.replaySnapshot;
    await waitFor(() => mirror.log.state.seq === 4, { timeoutMs, what: 'resync to seq 4' });
    expect(await body(mirror, '/p2/acme/b.json')).toBe('b4');
  });

  it('treats a 410 answered with the applied generation snapshot as an error with backoff, not a loop', async () => {
    const { primary, mirror } = await setup();
    primary.publish({ 'p2/acme/a.json': 'a1' });
    primary.publish({ 'p2/acme/a.json': 'a2' });
    await waitFor(() => mirror.log.state.seq === 2, { timeoutMs, what: 'seq 2' });
    primary.faults.replaySnapshot = await record(primary, 'snapshot', '/sync/v1/snapshot');
    primary.faults.oldestSeq = 3;
    primary.publish({ 'p2/acme/a.json': 'a3' });
    await waitFor(() => mirror.status.lastError === 'METASYNC_ERR_SYNC_PROTOCOL', { timeoutMs, what: 'refusal' });
    const snapshotsAtRefusal = primary.requests.filter((r) => r.startsWith('/sync/v1/snapshot')).length;
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Retries back off (100 ms doubling): a handful of snapshot fetches, never hundreds.
    expect(primary.requests.filter((r) => r.startsWith('/sync/v1/snapshot')).length - snapshotsAtRefusal).toBeLessThan(10);
    expect(mirror.log.state.seq).toBe(2);
  });
});

describe('freeze', () => {
  it('stays fresh for many bounds while the primary answers each challenge', async () => {
    // Bound of five polls: loose enough for a loaded CI box, and the run spans four bounds.
    const { primary, mirror } = await setup(['--max-unconfirmed-ms', '500']);
    primary.publish({ 'p2/acme/a.json': 'a1' });
    await waitFor(async () => (await mirror.app.inject({ url: '/health/fresh' })).statusCode === 200, { timeoutMs, what: 'fresh' });
    const startedAt = Date.now();
    const stale: string[] = [];
    while (Date.now() - startedAt < 2_000) {
      const health = await mirror.app.inject({ url: '/health/fresh' });
      if (health.statusCode !== 200) stale.push(health.body);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(stale).toEqual([]);
    const challenges = primary.requests.filter((r) => r.startsWith('/sync/v1/state?nonce='));
    expect(new Set(challenges).size).toBe(challenges.length);
  });

  it('turns stale within the bound while a replaying path keeps answering with old signed state, and keeps serving', async () => {
    const boundMs = 800;
    const { primary, mirror } = await setup(['--max-unconfirmed-ms', String(boundMs)]);
    primary.publish({ 'p2/acme/a.json': 'a1' });
    await waitFor(() => mirror.log.state.seq === 1, { timeoutMs, what: 'seq 1' });
    await waitFor(async () => (await mirror.app.inject({ url: '/health/fresh' })).statusCode === 200, { timeoutMs, what: 'fresh' });
    // The attacker recorded genuine signed answers at seq 1, and now replays them; events carry nothing new.
    primary.faults.replayState = await record(primary, 'state', '/sync/v1/state?nonce=recordedNonce000000000');
    primary.faults.replayChanges = await record(primary, 'changes', '/sync/v1/changes?since=1');
    primary.faults.silentEvents = true;
    const frozenAt = Date.now();
    primary.publish({ 'p2/acme/a.json': 'a2' });
    primary.publish({ 'p2/acme/b.json': 'b3' });
    const health = await waitFor(
      async () => {
        const answer = await mirror.app.inject({ url: '/health/fresh' });
        return answer.statusCode === 503 ? answer : undefined;
      },
      { timeoutMs: boundMs + 2_000, what: 'stale' },
    );
    const staleAfterMs = Date.now() - frozenAt;
    expect(staleAfterMs).toBeLessThan(boundMs + 500);
    // Only the confirmation rule saw it: by the lag rules the mirror was still "up to date".
    expect(health.body).toMatch(
      /^stale: primary signed state not confirmed for [\d.]+ s \(bound 0\.8 s; last confirmed at head 1; answers refused: METASYNC_ERR_SYNC_CHALLENGE_FAILED\)\n$/,
    );
    expect(health.body).not.toMatch(/silent|behind/);
    expect(mirror.log.state.seq).toBe(1);
    expect(await body(mirror, '/p2/acme/a.json')).toBe('a1');
    delete primary.faults.replayState;
    delete primary.faults.replayChanges;
    await waitFor(() => mirror.log.state.seq === 3, { timeoutMs, what: 'convergence after the replay stops' });
    await waitFor(async () => (await mirror.app.inject({ url: '/health/fresh' })).statusCode === 200, { timeoutMs, what: 'fresh again' });
  });

  it('lets a confirmed head feed the lag rules when only the changes are replayed', async () => {
    const { primary, mirror } = await setup(['--max-unconfirmed-ms', '5000', '--max-lag-ms', '600']);
    primary.publish({ 'p2/acme/a.json': 'a1' });
    await waitFor(() => mirror.log.state.seq === 1, { timeoutMs, what: 'seq 1' });
    primary.faults.replayChanges = await record(primary, 'changes', '/sync/v1/changes?since=1');
    primary.faults.silentEvents = true;
    primary.publish({ 'p2/acme/a.json': 'a2' });
    const health = await waitFor(
      async () => {
        const answer = await mirror.app.inject({ url: '/health/fresh' });
        return answer.statusCode === 503 ? answer : undefined;
      },
      { timeoutMs, what: 'stale' },
    );
    // The replayed batch says head 1; the challenge-confirmed state says head 2, and that is what counts.
    expect(health.body).toMatch(/^stale: behind for \d+ ms \(max 600\)/);
    expect(health.body).not.toMatch(/not confirmed/);
    expect(mirror.status.confirmedSeq).toBe(2);
    expect(await body(mirror, '/p2/acme/a.json')).toBe('a1');
  });

  it('drops a forged head event at the next confirmed state instead of staying "behind" for good', async () => {
    const { primary, mirror } = await setup(['--max-unconfirmed-ms', '2000', '--max-lag-ms', '200']);
    primary.publish({ 'p2/acme/a.json': 'a1' });
    await waitFor(() => mirror.log.state.seq === 1, { timeoutMs, what: 'seq 1' });
    await waitFor(async () => (await mirror.app.inject({ url: '/health/fresh' })).statusCode === 200, { timeoutMs, what: 'fresh' });
    await waitFor(
      () => {
        primary.announce(1_000_000);
        return mirror.status.headSeq === 1_000_000;
      },
      { timeoutMs, what: 'the forged head heard' },
    );
    expect((await mirror.app.inject({ url: '/health/fresh' })).body).toMatch(/behind by 999999 seq/);
    await waitFor(() => mirror.status.headSeq === 1, { timeoutMs, what: 'the forged head dropped' });
    await waitFor(async () => (await mirror.app.inject({ url: '/health/fresh' })).statusCode === 200, { timeoutMs, what: 'fresh again' });
    expect(mirror.status.confirmedSeq).toBe(1);
  });

  it('still bootstraps and follows a primary that ignores the nonce, but reports itself stale', async () => {
    const { primary, mirror } = await setup(['--max-unconfirmed-ms', '300'], (p) => {
      p.publish({ 'p2/acme/a.json': 'a1' });
      p.faults.ignoreNonce = true;
    });
    await waitFor(() => mirror.log.state.seq === 1, { timeoutMs, what: 'bootstrap' });
    primary.publish({ 'p2/acme/a.json': 'a2' });
    await waitFor(() => mirror.log.state.seq === 2, { timeoutMs, what: 'seq 2' });
    expect(await body(mirror, '/p2/acme/a.json')).toBe('a2');
    expect(mirror.status.confirmedSeq).toBeUndefined();
    const health = await waitFor(
      async () => {
        const answer = await mirror.app.inject({ url: '/health/fresh' });
        return answer.statusCode === 503 ? answer : undefined;
      },
      { timeoutMs, what: 'stale' },
    );
    expect(health.body).toMatch(
      /not confirmed for [\d.]+ s \(bound 0\.3 s; never confirmed since sync start; answers refused: METASYNC_ERR_SYNC_CHALLENGE_FAILED\)/,
    );
  });

  it('rejects a bound shorter than two poll intervals', () => {
    expect(() =>
      loadConfig(
        [
          '--primary',
          'http://127.0.0.1:1',
          '--data',
          '/tmp/x',
          '--trust-first-key',
          '--poll-interval-ms',
          '500',
          '--max-unconfirmed-ms',
          '900',
        ],
        {},
      ),
    ).toThrow(
      /--max-unconfirmed-ms \/ METASYNC_MAX_UNCONFIRMED_MS: must be 0 \(off\) or at least twice --poll-interval-ms \(1000\), got 900/,
    );
    const off = loadConfig(['--primary', 'http://127.0.0.1:1', '--data', '/tmp/x', '--trust-first-key', '--max-unconfirmed-ms', '0'], {});
    expect(off.help === false && off.config.maxUnconfirmedMs).toBe(0);
  });
});
