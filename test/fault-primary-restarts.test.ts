import { afterAll, describe, expect, it } from 'vitest';
import {
  getChecked,
  publishMany,
  publishPackage,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { appliedSeq, compareWithPrimary, headSeq, metricValue, startReadLoad } from './helpers/read-load.js';
import { waitFor } from './helpers/wait-for.js';
import { freePort } from './helpers/free-port.js';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The primary is SIGKILLed and restarted (same data dir, same port) RESTARTS
 * times while two publishers keep publishing and clients keep reading from two
 * mirrors. Every path the clients read exists in every generation (publishes
 * here update existing packages), so any 404, 5xx, timeout or body failing its
 * ETag is a failure. Afterwards both mirrors converge on the final head, serve
 * exactly the primary's state, and every publish the primary acknowledged is
 * visible (no seq reused for different content across crashes).
 */
const RESTARTS = 6;
const COUNT = 20;

let primary: RunningPrimary | undefined;
const mirrors: RunningMirror[] = [];

afterAll(async () => {
  for (const m of mirrors) await m.stop();
  await primary?.stop();
  await removeTempDirs();
});

describe('primary restarting in a loop', () => {
  it(`mirrors serve only verified bytes and no 5xx or 404 for existing packages through ${RESTARTS} primary SIGKILLs, then converge on the final head`, async () => {
    const listen = `127.0.0.1:${await freePort()}`;
    primary = await startPrimary({ listen });
    const dataDir = primary.dataDir;
    const keyArg = primary.keyArg;
    const primaryUrl = primary.url;
    await publishMany(primaryUrl, { vendor: 'acme', count: COUNT, version: '1.0.0', padBytes: 1_000 });
    for (let i = 0; i < 2; i++) {
      mirrors.push(
        await startMirror({
          primaryUrl,
          keyArg,
          args: [
            '--poll-interval-ms',
            '200',
            '--proxy-timeout-ms',
            '500',
            '--connect-timeout-ms',
            '300',
            '--request-timeout-ms',
            '1000',
            '--max-lag-ms',
            '3000',
          ],
        }),
      );
    }
    const head0 = await headSeq(primaryUrl);
    for (const m of mirrors)
      await waitFor(async () => (await appliedSeq(m.url)) === head0, { what: `${m.url} at seq ${head0}`, timeoutMs: 15_000 });

    const paths = ['packages.json', ...Array.from({ length: COUNT }, (_, i) => `p2/acme/p${i}.json`)].map((path) => ({ path }));
    const load = startReadLoad({ targets: () => mirrors.map((m) => m.url), paths: () => paths, workers: 4, pauseMs: 5 });

    // Publishers: bump a random package's version; a refused connection (primary down) is retried later.
    // Each publisher owns half the packages and retries a failed publish (same body) until the primary
    // acknowledges it, so a package's last acknowledged version is what it must hold at the end.
    const lastAttempt = new Map<string, { version: string; seq: number } | 'unknown'>();
    let publishing = true;
    let published = 0;
    let publishFailures = 0;
    let counter = 0;
    const publishers = Array.from({ length: 2 }, async (_, publisher) => {
      for (let i = 0; i < 100_000 && publishing; i++) {
        const name = `acme/p${2 * Math.floor(Math.random() * (COUNT / 2)) + publisher}`;
        const version = `2.0.${counter++}`;
        for (let attempt = 0; attempt < 1_000; attempt++) {
          try {
            const seq = await publishPackage(primaryUrl, name, [{ version: '1.0.0' }, { version }]);
            lastAttempt.set(name, { version, seq });
            published++;
            break;
          } catch {
            lastAttempt.set(name, 'unknown');
            publishFailures++;
            await sleep(50);
          }
        }
      }
    });

    const restartMs: number[] = [];
    for (let restart = 0; restart < RESTARTS; restart++) {
      await sleep(300 + Math.random() * 500);
      await primary.kill();
      await sleep(200 + Math.random() * 400);
      const started = Date.now();
      primary = await startPrimary({ dataDir, listen });
      restartMs.push(Date.now() - started);
    }
    await sleep(300);
    publishing = false;
    await Promise.all(publishers);
    const stats = await load.stop();

    const head = await headSeq(primaryUrl);
    const settledAt = Date.now();
    for (const m of mirrors)
      await waitFor(async () => (await appliedSeq(m.url)) === head, {
        what: `${m.url} at final head ${head}`,
        timeoutMs: 10_000,
        intervalMs: 20,
      });
    const convergeMs = Date.now() - settledAt;
    const verified: number[] = [];
    let checkedAcks = 0;
    for (const m of mirrors) {
      const { paths: count, problems } = await compareWithPrimary({ mirrorUrl: m.url, primaryUrl, seq: head });
      expect(problems).toEqual([]);
      verified.push(count);
      for (const [name, attempt] of lastAttempt) {
        if (attempt === 'unknown') continue;
        const { version, seq } = attempt;
        checkedAcks++;
        expect(seq).toBeLessThanOrEqual(head);
        expect((await getChecked(`${m.url}/p2/${name}.json`)).body.toString('utf8')).toContain(`"${version}"`);
      }
    }
    const refused = await Promise.all(mirrors.map((m) => metricValue(m.url, 'metasync_mirror_refused_batches_total')));
    const syncErrors = await Promise.all(mirrors.map((m) => metricValue(m.url, 'metasync_mirror_sync_errors_total')));
    console.log(
      `primary restarts: ${RESTARTS} SIGKILLs, restart to listening ${Math.min(...restartMs)}-${Math.max(...restartMs)} ms; ${published} publishes acknowledged (${publishFailures} attempts failed while down and were retried; last acknowledged version checked on ${checkedAcks / mirrors.length} packages), final head ${head}; ` +
        `${stats.requests} client reads (${stats.ok} ok, p99 ${[...stats.okLatenciesMs].sort((a, b) => a - b)[Math.floor(stats.okLatenciesMs.length * 0.99)]} ms); ` +
        `mirrors converged ${convergeMs} ms after the last publish, ${verified.join('/')} paths verified; failed sync runs ${syncErrors.join('/')}, refused documents ${refused.join('/')}`,
    );
    expect(stats.samples).toEqual([]);
    expect({
      bad: stats.badBytes,
      fivexx: stats.serverErrors,
      notFound: stats.notFoundExisting,
      other: stats.otherStatus,
      timeouts: stats.timeouts,
      down: stats.down,
    }).toEqual({
      bad: 0,
      fivexx: 0,
      notFound: 0,
      other: 0,
      timeouts: 0,
      down: 0,
    });
    expect(stats.ok).toBeGreaterThan(200);
    expect(published).toBeGreaterThan(RESTARTS);
    expect(publishFailures).toBeGreaterThan(0);
    expect([...lastAttempt.values()].filter((a) => a === 'unknown')).toEqual([]);
    expect(checkedAcks).toBeGreaterThan(COUNT);
    expect(convergeMs).toBeLessThan(5_000);
  }, 60_000);
});
