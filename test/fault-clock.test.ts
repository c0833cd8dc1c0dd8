import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  getChecked,
  getText,
  makeTempDir,
  publishMany,
  publishPackage,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { appliedSeq, headSeq } from './helpers/read-load.js';
import { waitFor } from './helpers/wait-for.js';
import { freePort } from './helpers/free-port.js';

/**
 * A mirror whose wall clock is an hour off the primary's (libfaketime, Debian
 * package `faketime`, preloaded into the mirror process only), and then jumps
 * by two hours while it runs (the other way), as an NTP step would. The
 * monotonic clock is left alone, as the kernel does on a real step.
 *
 *   - Last-Modified is the primary's exact value, and If-Modified-Since with it
 *     answers 304 (one second earlier: 200): the mirror's clock plays no part.
 *   - /health/fresh stays 200 while caught up, before and after the jump (no
 *     flap), and turns 503 about --max-lag-ms after the primary dies, also
 *     after a backward jump (silence measured on a clock that cannot go back).
 */
const MAX_LAG_MS = 2_000;
const HOUR_MS = 3_600_000;
const LIBFAKETIME_DIRS = [
  '/usr/lib/x86_64-linux-gnu/faketime',
  '/usr/lib/aarch64-linux-gnu/faketime',
  '/usr/lib/faketime',
  '/usr/local/lib/faketime',
];
const COUNT = 5;

let primary: RunningPrimary | undefined;
let mirror: RunningMirror | undefined;

afterEach(async () => {
  await mirror?.stop();
  await primary?.stop();
  mirror = undefined;
  primary = undefined;
});

afterAll(removeTempDirs);

function libfaketime(): string {
  const found = LIBFAKETIME_DIRS.map((dir) => join(dir, 'libfaketime.so.1')).find((path) => existsSync(path));
  if (found === undefined)
    throw new Error(
      `libfaketime.so.1 not found in ${LIBFAKETIME_DIRS.join(', ')}: install the Debian package faketime (scripts/setup.sh does)`,
    );
  return found;
}

/** Offset of the mirror's clock from ours, from its Date header (seconds resolution). */
async function mirrorClockOffsetMs(url: string): Promise<number> {
  const before = Date.now();
  const response = await fetch(`${url}/healthz`);
  await response.text();
  return Date.parse(response.headers.get('date') ?? '') - (before + Date.now()) / 2;
}

/** Probes /health/fresh every 25 ms for `forMs`; returns the non-200 answers. */
async function freshThroughout(url: string, forMs: number): Promise<string[]> {
  const failures: string[] = [];
  const until = Date.now() + forMs;
  for (let i = 0; i < 10_000 && Date.now() < until; i++) {
    const response = await getText(`${url}/health/fresh`);
    if (response.status !== 200) failures.push(`${response.status} ${response.body.trim()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return failures;
}

describe('mirror with its clock an hour off', () => {
  it.each([
    { start: '+1h', jump: '-1h', startMs: HOUR_MS, jumpMs: -HOUR_MS },
    { start: '-1h', jump: '+1h', startMs: -HOUR_MS, jumpMs: HOUR_MS },
  ])(
    'clock $start, stepping to $jump and back: exact Last-Modified, 304 on it, no flap while caught up, stale at max-lag after the primary dies',
    async ({ start, jump, startMs, jumpMs }) => {
      const preload = libfaketime();
      const listen = `127.0.0.1:${await freePort()}`;
      primary = await startPrimary({ listen });
      const p = primary;
      await publishMany(p.url, { vendor: 'acme', count: COUNT, version: '1.0.0', padBytes: 500 });
      const clockFile = join(await makeTempDir('e2e-clock-'), 'faketime');
      await writeFile(clockFile, `${start}\n`);
      mirror = await startMirror({
        primaryUrl: p.url,
        keyArg: p.keyArg,
        args: ['--poll-interval-ms', '200', '--max-lag-ms', String(MAX_LAG_MS), '--proxy-timeout-ms', '1000'],
        // FAKETIME_NO_CACHE: the file is re-read on every call, so writing it is a live clock step.
        env: { LD_PRELOAD: preload, FAKETIME_TIMESTAMP_FILE: clockFile, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' },
      });
      const m = mirror;
      const offsetMs = await mirrorClockOffsetMs(m.url);
      expect(Math.abs(offsetMs - startMs)).toBeLessThan(60_000);
      await waitFor(async () => (await appliedSeq(m.url)) === (await headSeq(p.url)), { what: 'mirror at head', timeoutMs: 15_000 });
      const updatedSeq = await publishPackage(p.url, 'acme/p0', [{ version: '1.0.0' }, { version: '1.1.0' }]);
      await waitFor(async () => (await appliedSeq(m.url)) >= updatedSeq, { what: `seq ${updatedSeq} applied`, timeoutMs: 5_000 });

      const paths = ['packages.json', ...Array.from({ length: COUNT }, (_, i) => `p2/acme/p${i}.json`)];
      const mismatches: string[] = [];
      for (const path of paths) {
        const fromPrimary = await getChecked(`${p.url}/${path}`);
        const lastModified = fromPrimary.headers.get('last-modified') ?? 'none';
        const fromMirror = await getChecked(`${m.url}/${path}`);
        const mirrorLastModified = fromMirror.headers.get('last-modified');
        if (
          fromMirror.status !== 200 ||
          !fromMirror.hashOk ||
          fromMirror.etagSha !== fromPrimary.etagSha ||
          mirrorLastModified !== lastModified
        ) {
          mismatches.push(`${path}: ${fromMirror.status} last-modified ${mirrorLastModified} vs primary ${lastModified}`);
        }
        const conditional = await getChecked(`${m.url}/${path}`, { 'if-modified-since': lastModified });
        if (conditional.status !== 304) mismatches.push(`${path}: If-Modified-Since ${lastModified} answered ${conditional.status}`);
        const earlier = new Date(Date.parse(lastModified) - 1_000).toUTCString();
        const changed = await getChecked(`${m.url}/${path}`, { 'if-modified-since': earlier });
        if (changed.status !== 200 || !changed.hashOk) mismatches.push(`${path}: If-Modified-Since ${earlier} answered ${changed.status}`);
      }
      expect(mismatches).toEqual([]);

      expect(await freshThroughout(m.url, 1_000)).toEqual([]);
      // Step the clock while caught up, probing from the very instant of the step (a flap lasts one poll).
      await writeFile(clockFile, `${jump}\n`);
      const jumpedAt = Date.now();
      const probing = freshThroughout(m.url, 1_500);
      await waitFor(async () => Math.abs((await mirrorClockOffsetMs(m.url)) - jumpMs) < 60_000, {
        what: `the mirror's clock at ${jump}`,
        timeoutMs: 5_000,
        intervalMs: 50,
      });
      const jumpSeenMs = Date.now() - jumpedAt;
      expect(await probing).toEqual([]);

      // Step it back during an outage: neither an early stale (forward step) nor a hidden silence (backward step).
      await p.kill();
      const killedAt = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 500));
      await writeFile(clockFile, `${start}\n`);
      await waitFor(async () => (await getText(`${m.url}/health/fresh`)).status === 503, {
        what: `stale after the primary died (clock stepped ${jump} -> ${start} during the outage)`,
        timeoutMs: MAX_LAG_MS + 3_000,
        intervalMs: 25,
      });
      const staleMs = Date.now() - killedAt;
      primary = await startPrimary({ dataDir: p.dataDir, listen });
      const restartedAt = Date.now();
      await waitFor(async () => (await getText(`${m.url}/health/fresh`)).status === 200, {
        what: 'fresh after the primary came back',
        timeoutMs: 5_000,
        intervalMs: 25,
      });
      const freshAgainMs = Date.now() - restartedAt;
      console.log(
        `clock ${start}, stepped to ${jump} while caught up and back during an outage: mirror Date offset ${Math.round(offsetMs / 1000)} s; ${paths.length} paths with the primary's exact Last-Modified and 304 on it; fresh throughout before and after the jump (seen in its Date header after ${jumpSeenMs} ms); ` +
          `stale ${staleMs} ms after the primary died (max lag ${MAX_LAG_MS}; clock stepped back 500 ms into the outage); fresh ${freshAgainMs} ms after it returned`,
      );
      expect(staleMs).toBeGreaterThanOrEqual(MAX_LAG_MS - 500);
      expect(staleMs).toBeLessThan(MAX_LAG_MS + 1_500);
    },
    40_000,
  );
});
