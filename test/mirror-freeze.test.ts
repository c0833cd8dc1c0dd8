import { afterAll, describe, expect, it } from 'vitest';
import {
  getChecked,
  getText,
  publishPackage,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { startReplayProxy, type ReplayProxy } from './helpers/replay-proxy.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * The freeze attack, across real processes: a hop between the mirror and the
 * real primary starts replaying the primary's own earlier signed answers
 * (state, changes) and keeps the event stream alive with comments, while the
 * primary moves on. Every signature still verifies and the mirror keeps
 * hearing from "the primary", so by the lag rules alone it would stay fresh
 * forever. The nonce challenge must turn /health/fresh stale within
 * --max-unconfirmed-ms (saying why), while every file it has keeps being
 * served with its verified bytes; when the path heals it converges.
 */
const BOUND_MS = 1_500;
const POLL_MS = 200;

let primary: RunningPrimary | undefined;
let mirror: RunningMirror | undefined;
let proxy: ReplayProxy | undefined;

afterAll(async () => {
  await mirror?.stop();
  await proxy?.close();
  await primary?.stop();
  await removeTempDirs();
});

describe('mirror behind a replaying path (freeze attack)', () => {
  it('turns stale within the confirmation bound, naming it, keeps serving, and converges after the path heals', async () => {
    primary = await startPrimary();
    const p = primary;
    proxy = await startReplayProxy(p.url);
    const hop = proxy;
    const seq = await publishPackage(p.url, 'acme/frozen', [{ version: '1.0.0' }]);
    mirror = await startMirror({
      primaryUrl: hop.url,
      keyArg: p.keyArg,
      args: [
        '--max-unconfirmed-ms',
        String(BOUND_MS),
        '--poll-interval-ms',
        String(POLL_MS),
        '--max-lag-ms',
        '5000',
        '--proxy-timeout-ms',
        '1000',
      ],
    });
    const m = mirror;
    await waitFor(async () => (await getText(`${m.url}/health/fresh`)).status === 200, { what: 'fresh before the freeze' });
    const before = await getChecked(`${m.url}/p2/acme/frozen.json`);
    expect(before.status).toBe(200);
    // The attacker's recording: the primary's genuine signed answers at the mirror's current seq.
    expect((await fetch(`${hop.url}/sync/v1/changes?since=${seq}`)).status).toBe(200);
    expect((await fetch(`${hop.url}/sync/v1/state`)).status).toBe(200);

    hop.setMode('replay');
    const frozenAt = Date.now();
    const newer = await publishPackage(p.url, 'acme/frozen', [{ version: '1.0.0' }, { version: '2.0.0' }]);
    expect(newer).toBeGreaterThan(seq);

    let stale: { status: number; body: string } | undefined;
    let served = 0;
    const failures: string[] = [];
    while (Date.now() - frozenAt < BOUND_MS + 3_000 && stale === undefined) {
      const file = await getChecked(`${m.url}/p2/acme/frozen.json`);
      served++;
      if (file.status !== 200 || !file.hashOk || !file.body.equals(before.body))
        failures.push(`p2/acme/frozen.json: ${file.status} hashOk=${file.hashOk}`);
      const health = await getText(`${m.url}/health/fresh`);
      if (health.status === 503) stale = health;
      else if (health.status !== 200) failures.push(`fresh: ${health.status} ${health.body}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const staleAfterMs = Date.now() - frozenAt;
    expect(failures).toEqual([]);
    expect(hop.replayed()).toBeGreaterThan(0);
    expect(stale, 'the mirror stayed fresh behind a replaying path').toBeDefined();
    expect(stale!.body).toMatch(
      /^stale: primary signed state not confirmed for [\d.]+ s \(bound 1\.5 s; last confirmed at head \d+; answers refused: METASYNC_ERR_SYNC_CHALLENGE_FAILED\)\n$/,
    );
    // Only the challenge caught it: replayed answers kept the lag rules satisfied.
    expect(stale!.body).not.toMatch(/silent|behind/);
    // The last confirmation came at most a poll or so before the replay began (more on a loaded box).
    expect(staleAfterMs).toBeGreaterThanOrEqual(BOUND_MS - 3 * POLL_MS);
    expect(staleAfterMs).toBeLessThan(BOUND_MS + 2 * POLL_MS + 1_000);
    expect(served).toBeGreaterThan(5);
    // Still stale a while later (no flapping back to fresh on replayed answers).
    await new Promise((resolve) => setTimeout(resolve, 2 * POLL_MS));
    expect((await getText(`${m.url}/health/fresh`)).status).toBe(503);

    hop.setMode('pass');
    const healedAt = Date.now();
    await waitFor(async () => (await getChecked(`${m.url}/p2/acme/frozen.json`)).body.includes('2.0.0'), {
      what: 'the newer version after the path heals',
      timeoutMs: 5_000,
    });
    await waitFor(async () => (await getText(`${m.url}/health/fresh`)).status === 200, {
      what: 'fresh after the path heals',
      timeoutMs: 5_000,
    });
    console.log(
      `freeze: stale ${staleAfterMs} ms after the replay began (bound ${BOUND_MS} ms, poll ${POLL_MS} ms); ${served} file checks all verified; fresh and current ${Date.now() - healedAt} ms after healing`,
    );
  }, 30_000);
});
