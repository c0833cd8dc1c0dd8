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
import { waitFor } from './helpers/wait-for.js';
import { freePort } from './helpers/free-port.js';

/**
 * The primary process goes away for a real (shortened) outage: OUTAGE_MS with
 * the mirror's --max-lag-ms at MAX_LAG_MS. The full minute runs in the soak.
 * Everything the mirror knows keeps being served, unknown paths are a fast
 * 404 no-store (never 5xx), freshness fails after the configured lag, and the
 * mirror is fresh and current again within a second of the primary's return.
 */
const MAX_LAG_MS = 2_500;
const OUTAGE_MS = 6_000;
const PACKAGES = ['acme/a', 'acme/b', 'acme/c'];

let primary: RunningPrimary | undefined;
let mirror: RunningMirror | undefined;

afterAll(async () => {
  await mirror?.stop();
  await primary?.stop();
  await removeTempDirs();
});

describe('mirror during a primary outage', () => {
  it('keeps serving, 404s unknown paths without 5xx, turns stale after the lag, recovers within a second', async () => {
    const port = await freePort();
    primary = await startPrimary({ listen: `127.0.0.1:${port}` });
    const dataDir = primary.dataDir;
    for (const name of PACKAGES) await publishPackage(primary.url, name, [{ version: '1.0.0' }]);
    mirror = await startMirror({
      primaryUrl: primary.url,
      keyArg: primary.keyArg,
      args: ['--max-lag-ms', String(MAX_LAG_MS), '--poll-interval-ms', '250', '--proxy-timeout-ms', '500', '--connect-timeout-ms', '300'],
    });
    const m = mirror;
    await waitFor(async () => (await getText(`${m.url}/health/fresh`)).status === 200, { what: 'fresh before the outage' });
    const known = ['packages.json', ...PACKAGES.map((n) => `p2/${n}.json`)];
    for (const path of known) expect((await getChecked(`${m.url}/${path}`)).status).toBe(200);

    await primary.kill();
    const downAt = Date.now();
    let staleAt: number | undefined;
    let requests = 0;
    const failures: string[] = [];
    while (Date.now() - downAt < OUTAGE_MS) {
      for (const path of known) {
        const response = await getChecked(`${m.url}/${path}`);
        requests++;
        if (response.status !== 200 || !response.hashOk) failures.push(`${path}: ${response.status} hashOk=${response.hashOk}`);
      }
      const unknown = await getChecked(`${m.url}/p2/acme/never-published.json`);
      if (unknown.status !== 404 || unknown.headers.get('cache-control') !== 'no-store')
        failures.push(`unknown: ${unknown.status} ${unknown.headers.get('cache-control')}`);
      const fresh = await getText(`${m.url}/health/fresh`);
      if (fresh.status >= 500 && fresh.status !== 503) failures.push(`fresh: ${fresh.status}`);
      if (fresh.status === 503 && staleAt === undefined) staleAt = Date.now();
      if (fresh.status === 200 && staleAt !== undefined) failures.push('fresh again while the primary is down');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(failures).toEqual([]);
    expect(requests).toBeGreaterThan(20);
    expect(staleAt).toBeDefined();
    // Stale no earlier than the configured lag, and not much later than lag + one poll.
    expect(staleAt! - downAt).toBeGreaterThanOrEqual(MAX_LAG_MS - 300);
    expect(staleAt! - downAt).toBeLessThan(MAX_LAG_MS + 1_500);

    primary = await startPrimary({ dataDir, listen: `127.0.0.1:${port}` });
    const backAt = Date.now();
    await waitFor(async () => (await getText(`${m.url}/health/fresh`)).status === 200, {
      what: 'fresh after the return',
      timeoutMs: 5_000,
    });
    const freshAfterMs = Date.now() - backAt;
    const seq = await publishPackage(primary.url, 'acme/a', [{ version: '1.0.0' }, { version: '1.1.0' }]);
    const publishedAt = Date.now();
    await waitFor(async () => (await getChecked(`${m.url}/p2/acme/a.json`)).body.includes('1.1.0'), {
      what: 'publish after the return',
      timeoutMs: 5_000,
    });
    const visibleMs = Date.now() - publishedAt;
    console.log(
      `outage: stale ${staleAt! - downAt} ms after kill (max lag ${MAX_LAG_MS}); fresh ${freshAfterMs} ms after return; seq ${seq} visible in ${visibleMs} ms`,
    );
    expect(freshAfterMs).toBeLessThan(1_000);
    expect(visibleMs).toBeLessThan(1_000);
  }, 40_000);
});
