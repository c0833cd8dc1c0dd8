import { afterAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultMode, type FaultProxy } from './helpers/fault-proxy.js';
import {
  getChecked,
  getText,
  primaryStateAt,
  publishMany,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * A hostile hop between mirror and primary: flipped bytes, truncated bodies,
 * dropped and reset connections, a blackhole. While it lasts, every answer the
 * mirror gives is either a 404 or bytes that hash to their ETag; once the hop
 * is clean the mirror converges to the primary's head.
 */
let primary: RunningPrimary | undefined;
let proxy: FaultProxy | undefined;
let mirror: RunningMirror | undefined;

afterAll(async () => {
  await mirror?.stop();
  await proxy?.close();
  await primary?.stop();
  await removeTempDirs();
});

const COUNT = 120;
const paths = (): string[] => ['packages.json', ...Array.from({ length: COUNT }, (_, i) => `p2/acme/p${i}.json`)];

async function sweep(url: string, bad: string[]): Promise<{ ok: number; notFound: number }> {
  let ok = 0;
  let notFound = 0;
  // In parallel: with a blackholed hop every proxied miss waits out the proxy timeout.
  await Promise.all(
    paths().map(async (path) => {
      const response = await getChecked(`${url}/${path}`);
      if (response.status === 200 && response.hashOk && response.etagSha !== undefined) ok++;
      else if (response.status === 404) notFound++;
      else bad.push(`${path}: ${response.status} hashOk=${response.hashOk} etag=${response.etagSha ?? 'none'}`);
    }),
  );
  return { ok, notFound };
}

describe('mirror behind a corrupting hop', () => {
  it('never serves a byte that fails its hash, and converges once the hop is clean', async () => {
    primary = await startPrimary();
    await publishMany(primary.url, { vendor: 'acme', count: COUNT, version: '1.0.0', padBytes: 3000 });
    proxy = await startFaultProxy({ upstream: primary.url, mode: { kind: 'corrupt' } });
    mirror = await startMirror({
      primaryUrl: proxy.url,
      keyArg: primary.keyArg,
      args: ['--poll-interval-ms', '200', '--proxy-timeout-ms', '500', '--connect-timeout-ms', '300', '--request-timeout-ms', '1000'],
    });
    const m = mirror;
    const p = proxy;
    const bad: string[] = [];
    const modes: FaultMode[] = [
      { kind: 'corrupt' },
      { kind: 'truncate', afterBytes: 2_500 },
      { kind: 'drop' },
      { kind: 'reset' },
      { kind: 'blackhole' },
      { kind: 'corrupt', probability: 0.3 },
    ];
    for (const mode of modes) {
      p.setMode(mode);
      p.destroyAll();
      const until = Date.now() + 1_000;
      while (Date.now() < until) await sweep(m.url, bad);
      // More publishes while the hop is bad: the mirror must not take them in damaged.
      if (mode.kind === 'corrupt')
        await publishMany(primary.url, { vendor: 'acme', count: 20, version: `1.0.${modes.indexOf(mode) + 1}`, padBytes: 3000 });
    }
    expect(bad).toEqual([]);
    const metrics = (await getText(`${m.url}/metrics`)).body;
    const rejected = Number(/^metasync_mirror_rejected_objects_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    const refused = Number(/^metasync_mirror_refused_batches_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    const syncErrors = [...metrics.matchAll(/^metasync_mirror_sync_errors_total\{code="[A-Z_]+"\} (\d+)/gm)].reduce(
      (sum, m) => sum + Number(m[1]),
      0,
    );
    // The hop really did damage: the mirror saw (and refused) bad transfers.
    expect(rejected + refused + syncErrors).toBeGreaterThan(0);

    p.setMode({ kind: 'pass' });
    p.destroyAll();
    const head = Number(JSON.parse((await getText(`${primary.url}/sync/v1/state`)).body).seq);
    await waitFor(async () => /^metasync_mirror_applied_seq (\d+)/m.exec((await getText(`${m.url}/metrics`)).body)?.[1] === String(head), {
      what: `mirror at head ${head}`,
      timeoutMs: 15_000,
    });
    const expected = await primaryStateAt(primary.url, head);
    const final = await sweep(m.url, bad);
    expect(bad).toEqual([]);
    expect(final.ok).toBe(paths().length);
    for (const path of paths()) {
      const response = await getChecked(`${m.url}/${path}`);
      expect(response.etagSha).toBe(expected.get(path));
      expect(response.headers.get('x-metasync-proxied')).toBeNull();
    }
    console.log(
      `corruption: rejected objects ${rejected}, refused documents ${refused}, failed sync runs ${syncErrors}, converged to seq ${head}`,
    );
  }, 60_000);
});
