import { afterAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import {
  getChecked,
  makeTempDir,
  primaryStateAt,
  publishMany,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { appliedSeq, headSeq } from './helpers/read-load.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * SIGKILL a mirror at random points of large applies, KILLS times. After each
 * kill the mirror restarts with its sync path cut (fault proxy resetting), so
 * it must serve exactly the generation its index log says: every checked path
 * equals the primary's state at that seq, hashes verify, nothing is proxied.
 * Then the path opens again, and at the end the mirror converges to the head.
 * Whenever a mirror caught up before its kill, the next run starts from an
 * empty data dir (a full bootstrap: the large apply) after a small publish round.
 */
const KILLS = 20;
const INITIAL_PACKAGES = 500;
const ROUND_PACKAGES = 30;
const PAD_BYTES = 3_000;
const SAMPLE = 150;

let primary: RunningPrimary | undefined;
let proxy: FaultProxy | undefined;
let mirror: RunningMirror | undefined;

afterAll(async () => {
  await mirror?.kill();
  await proxy?.close();
  await primary?.stop();
  await removeTempDirs();
});

describe('mirror killed during large applies', () => {
  it(`restarts consistent after ${KILLS} SIGKILLs at random points, never serving bytes that fail their hash, and converges`, async () => {
    const t0 = Date.now();
    primary = await startPrimary();
    const p = primary;
    await publishMany(p.url, { vendor: 'acme', count: INITIAL_PACKAGES, version: '1.0.0', padBytes: PAD_BYTES, concurrency: 16 });
    const publishedMs = Date.now() - t0;
    proxy = await startFaultProxy({ upstream: p.url });
    const px = proxy;
    let dataDir = await makeTempDir('e2e-crash-mirror-');
    const start = async (): Promise<RunningMirror> =>
      (mirror = await startMirror({
        primaryUrl: px.url,
        keyArg: p.keyArg,
        dataDir,
        args: ['--poll-interval-ms', '200', '--connect-timeout-ms', '300', '--proxy-timeout-ms', '300'],
      }));

    // One clean bootstrap first, to learn how long a large apply takes here.
    const probe = await start();
    const probeStart = Date.now();
    const initialHead = await headSeq(p.url);
    await waitFor(async () => (await appliedSeq(probe.url)) === initialHead, { what: 'probe bootstrap', timeoutMs: 60_000 });
    const applyMs = Math.max(200, Date.now() - probeStart);
    await probe.kill();

    let round = 1;
    let killedMidApply = 0;
    // Kills land at a random point of a window that starts as the probe's apply time and
    // adapts: under a loaded CI box one probe is a poor estimate of every later apply, and a
    // window that is too long lets most kills land after the apply finished (testing nothing).
    let killWindowMs = applyMs;
    const problems: string[] = [];
    dataDir = await makeTempDir('e2e-crash-mirror-');
    px.setMode({ kind: 'reset' });
    for (let kill = 0; kill <= KILLS; kill++) {
      // Started cut off from the primary: it must serve exactly the generation it committed.
      let running = await start();
      const seq = await appliedSeq(running.url);
      const head = await headSeq(p.url);
      if (kill > 0 && seq < head) {
        killedMidApply++;
        killWindowMs = Math.min(applyMs * 2, killWindowMs * 1.25);
      } else if (kill > 0) {
        killWindowMs = Math.max(50, killWindowMs * 0.7);
      }
      if (seq > 0) {
        const expected = await primaryStateAt(p.url, seq);
        const all = [...expected.keys()];
        const sample = ['packages.json', ...Array.from({ length: SAMPLE }, () => all[Math.floor(Math.random() * all.length)]!)];
        await Promise.all(
          sample.map(async (path) => {
            const response = await getChecked(`${running.url}/${path}`);
            const ok =
              response.status === 200 &&
              response.hashOk &&
              response.etagSha === expected.get(path) &&
              response.headers.get('x-metasync-seq') === String(seq) &&
              response.headers.get('x-metasync-proxied') === null;
            if (!ok)
              problems.push(
                `kill ${kill} seq ${seq} ${path}: ${response.status} hashOk=${response.hashOk} etag=${response.etagSha} want ${expected.get(path)}`,
              );
          }),
        );
      }
      if (kill === KILLS) {
        await running.kill();
        break;
      }
      if (seq === head) {
        // Caught up: stage the next large apply (an empty data dir means a full bootstrap),
        // plus a small publish round so incremental applies stay in the mix.
        await running.kill();
        round++;
        await publishMany(p.url, { vendor: 'acme', count: ROUND_PACKAGES, version: `1.0.${round}`, padBytes: PAD_BYTES, concurrency: 16 });
        dataDir = await makeTempDir('e2e-crash-mirror-');
        running = await start();
      }
      px.setMode({ kind: 'pass' });
      px.destroyAll();
      await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * killWindowMs)));
      await running.kill();
      px.setMode({ kind: 'reset' });
      px.destroyAll();
    }
    expect(problems.slice(0, 20)).toEqual([]);

    px.setMode({ kind: 'pass' });
    const final = await start();
    const head = await headSeq(p.url);
    await waitFor(async () => (await appliedSeq(final.url)) === head, { what: `convergence to seq ${head}`, timeoutMs: 30_000 });
    const expected = await primaryStateAt(p.url, head);
    const paths = [...expected.keys()];
    const bad: string[] = [];
    for (let i = 0; i < paths.length; i += 50) {
      await Promise.all(
        paths.slice(i, i + 50).map(async (path) => {
          const response = await getChecked(`${final.url}/${path}`);
          if (response.status !== 200 || !response.hashOk || response.etagSha !== expected.get(path))
            bad.push(`${path}: ${response.status}`);
        }),
      );
    }
    console.log(
      `crash: initial publish ${publishedMs} ms, bootstrap ${applyMs} ms, total ${Date.now() - t0} ms; ${KILLS} kills, ${killedMidApply} landed before the apply finished (final window ${Math.round(killWindowMs)} ms), ${round} rounds, converged to seq ${head} (${paths.length} paths)`,
    );
    expect(bad.slice(0, 20)).toEqual([]);
    expect(killedMidApply).toBeGreaterThanOrEqual(KILLS / 4);
  }, 240_000);
});
