import { afterAll, describe, expect, it } from 'vitest';
import {
  getChecked,
  makeTempDir,
  publishMany,
  publishPackage,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { appliedSeq, compareWithPrimary, headSeq, startReadLoad, type ReadablePath } from './helpers/read-load.js';
import { waitFor } from './helpers/wait-for.js';
import { freePort } from './helpers/free-port.js';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * One mirror (same data dir, same port) stopped and started RESTARTS times,
 * alternating SIGTERM and SIGKILL, while clients read from it and the primary
 * keeps publishing updates and new packages. (mirror-crash.test.ts kills
 * during large applies with the sync path cut; this is the restart loop under
 * client load.) While the process is down a request may fail to connect; every
 * answer it does give is verified bytes or, for a package whose publish had
 * returned, still a 200 (from its store or through the proxy fallback): never a
 * 404, 5xx or bad byte. Each restart serves a generation no older than the one
 * before the stop, a SIGTERM exits cleanly, and at the end the mirror holds
 * exactly the primary's head.
 */
const RESTARTS = 6;
const COUNT = 20;

let primary: RunningPrimary | undefined;
let mirror: RunningMirror | undefined;

afterAll(async () => {
  await mirror?.kill();
  await primary?.stop();
  await removeTempDirs();
});

describe('mirror restarting in a loop under client load', () => {
  it(`stays consistent across ${RESTARTS} SIGTERM/SIGKILL restarts, never answering a bad byte, 5xx or 404 for what exists, and converges`, async () => {
    primary = await startPrimary();
    const p = primary;
    await publishMany(p.url, { vendor: 'acme', count: COUNT, version: '1.0.0', padBytes: 1_000 });
    const dataDir = await makeTempDir('e2e-restart-mirror-');
    const port = await freePort();
    const mirrorUrl = `http://127.0.0.1:${port}`;
    const start = async (): Promise<RunningMirror> =>
      (mirror = await startMirror({
        primaryUrl: p.url,
        keyArg: p.keyArg,
        dataDir,
        args: ['--listen', `127.0.0.1:${port}`, '--poll-interval-ms', '200', '--proxy-timeout-ms', '1000', '--connect-timeout-ms', '300'],
      }));
    const first = await start();
    expect(first.url).toBe(mirrorUrl);
    const head0 = await headSeq(p.url);
    await waitFor(async () => (await appliedSeq(mirrorUrl)) === head0, { what: `mirror at seq ${head0}`, timeoutMs: 15_000 });

    const paths: ReadablePath[] = ['packages.json', ...Array.from({ length: COUNT }, (_, i) => `p2/acme/p${i}.json`)].map((path) => ({
      path,
    }));
    const load = startReadLoad({ targets: () => [mirrorUrl], paths: () => paths, workers: 4, pauseMs: 5 });
    let publishing = true;
    let published = 0;
    const versions = new Map<string, string>();
    const publisher = (async () => {
      for (let i = 0; i < 100_000 && publishing; i++) {
        if (i % 3 === 0) {
          const name = `acme/new${i}`;
          await publishPackage(p.url, name, [{ version: '1.0.0' }]);
          // Readable from the moment its publish returned: the mirror has it or proxies it.
          paths.push({ path: `p2/${name}.json`, sinceMs: Date.now() });
          versions.set(name, '1.0.0');
        } else {
          const name = `acme/p${i % COUNT}`;
          await publishPackage(p.url, name, [{ version: '1.0.0' }, { version: `2.0.${i}` }]);
          versions.set(name, `2.0.${i}`);
        }
        published++;
        await sleep(30);
      }
    })();

    const restartMs: number[] = [];
    const regressions: string[] = [];
    const exits: string[] = [];
    for (let restart = 0; restart < RESTARTS; restart++) {
      await sleep(300 + Math.random() * 500);
      const running = mirror!;
      const before = await appliedSeq(mirrorUrl);
      const graceful = restart % 2 === 0;
      if (graceful) await running.stop(5_000);
      else await running.kill();
      const exit = await running.exited;
      if (graceful && (exit.code !== 0 || exit.signal !== null)) exits.push(`SIGTERM ${restart}: code ${exit.code} signal ${exit.signal}`);
      const started = Date.now();
      await start();
      restartMs.push(Date.now() - started);
      // Whatever it serves first was committed: never older than what it served before the stop.
      const after = await appliedSeq(mirrorUrl);
      if (after < before)
        regressions.push(`restart ${restart} (${graceful ? 'SIGTERM' : 'SIGKILL'}): served seq ${before} before, ${after} after`);
    }
    await sleep(300);
    publishing = false;
    await publisher;
    const stats = await load.stop();

    const head = await headSeq(p.url);
    const settledAt = Date.now();
    await waitFor(async () => (await appliedSeq(mirrorUrl)) === head, {
      what: `mirror at final head ${head}`,
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    const convergeMs = Date.now() - settledAt;
    const { paths: verified, problems } = await compareWithPrimary({ mirrorUrl, primaryUrl: p.url, seq: head });
    const stale: string[] = [];
    for (const [name, version] of versions) {
      if (!(await getChecked(`${mirrorUrl}/p2/${name}.json`)).body.toString('utf8').includes(`"${version}"`))
        stale.push(`${name} lacks ${version}`);
    }
    console.log(
      `mirror restarts: ${RESTARTS} (alternating SIGTERM/SIGKILL), restart to listening ${Math.min(...restartMs)}-${Math.max(...restartMs)} ms; ${published} publishes during the loop, final head ${head}; ` +
        `${stats.requests} client reads: ${stats.ok} verified 200s, ${stats.down} refused/reset while down, 0 allowed otherwise (bad ${stats.badBytes}, 5xx ${stats.serverErrors}, 404 ${stats.notFoundExisting}, timeouts ${stats.timeouts}); ` +
        `converged ${convergeMs} ms after the last publish, ${verified} paths verified`,
    );
    expect(regressions).toEqual([]);
    expect(exits).toEqual([]);
    expect(stats.samples).toEqual([]);
    expect({
      bad: stats.badBytes,
      fivexx: stats.serverErrors,
      notFound: stats.notFoundExisting,
      other: stats.otherStatus,
      timeouts: stats.timeouts,
    }).toEqual({
      bad: 0,
      fivexx: 0,
      notFound: 0,
      other: 0,
      timeouts: 0,
    });
    // Reads really ran while it was up (at least a few dozen per life of the process).
    expect(stats.ok).toBeGreaterThan(20 * RESTARTS);
    expect(problems).toEqual([]);
    expect(stale).toEqual([]);
    expect(convergeMs).toBeLessThan(5_000);
  }, 60_000);
});
