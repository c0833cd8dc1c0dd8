import { afterAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
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

/**
 * The race that bit packagist.org: a client alternating between two mirrors
 * request by request reads a root from the fresh one and a p2 file from the
 * lagging one. Mirror B's sync path runs through a fault proxy that delays
 * every chunk, so it trails A; publishing runs continuously for PUBLISH_MS.
 * Every package whose publish call returned must be served (200) by both, and
 * every body must hash to its ETag.
 */
const PUBLISH_MS = 30_000;
const CLIENTS = 4;

let primary: RunningPrimary | undefined;
let proxy: FaultProxy | undefined;
const mirrors: RunningMirror[] = [];

afterAll(async () => {
  for (const mirror of mirrors) await mirror.stop();
  await proxy?.close();
  await primary?.stop();
  await removeTempDirs();
});

describe('two mirrors, one slowed, a client alternating between them', () => {
  it('gives zero 404s and zero 5xx for published packages during continuous publishing, every body matching its ETag', async () => {
    primary = await startPrimary();
    const published: string[] = [];
    for (let i = 0; i < 10; i++) {
      await publishPackage(primary.url, `acme/base${i}`, [{ version: '1.0.0' }]);
      published.push(`acme/base${i}`);
    }
    proxy = await startFaultProxy({ upstream: primary.url, mode: { kind: 'delay', ms: 150 } });
    mirrors.push(await startMirror({ primaryUrl: primary.url, keyArg: primary.keyArg }));
    mirrors.push(await startMirror({ primaryUrl: proxy.url, keyArg: primary.keyArg, args: ['--proxy-timeout-ms', '5000'] }));
    for (const mirror of mirrors) {
      await waitFor(async () => (await getChecked(`${mirror.url}/p2/acme/base9.json`)).status === 200, {
        what: `${mirror.url} bootstrapped`,
        timeoutMs: 10_000,
      });
    }

    const failures: string[] = [];
    let requests = 0;
    let publishes = 0;
    let turn = 0;
    const stopAt = Date.now() + PUBLISH_MS;
    const nextMirror = (): RunningMirror => mirrors[turn++ % mirrors.length]!;

    const publisher = (async () => {
      for (let i = 0; Date.now() < stopAt; i++) {
        // New packages, and new versions of packages clients already read.
        const name = i % 3 === 0 ? `acme/base${i % 10}` : `acme/new${i}`;
        const versions = i % 3 === 0 ? [{ version: '1.0.0' }, { version: `1.${i + 1}.0` }] : [{ version: '1.0.0' }];
        await publishPackage(primary!.url, name, versions);
        if (!published.includes(name)) published.push(name);
        publishes++;
        await new Promise((resolve) => setTimeout(resolve, 40));
      }
    })();

    const client = async (): Promise<void> => {
      while (Date.now() < stopAt + 500) {
        const root = await getChecked(`${nextMirror().url}/packages.json`);
        requests++;
        if (root.status !== 200 || !root.hashOk) failures.push(`packages.json: ${root.status} hashOk=${root.hashOk}`);
        // Newest packages first: the ones the lagging mirror is most likely to lack.
        const known = published.slice(-5).concat(published[Math.floor(Math.random() * published.length)]!);
        for (const name of known) {
          const mirror = nextMirror();
          const response = await getChecked(`${mirror.url}/p2/${name}.json`);
          requests++;
          if (response.status !== 200 || !response.hashOk)
            failures.push(`${mirror.url} p2/${name}.json: ${response.status} hashOk=${response.hashOk}`);
        }
      }
    };
    await Promise.all([publisher, ...Array.from({ length: CLIENTS }, client)]);

    const proxiedB = Number(
      /^metasync_mirror_proxied_responses_total\{outcome="verified"\} (\d+)/m.exec(
        (await getText(`${mirrors[1]!.url}/metrics`)).body,
      )?.[1] ?? 0,
    );
    console.log(
      `race: ${publishes} publishes, ${requests} requests, ${failures.length} failures, slowed mirror proxied ${proxiedB} responses`,
    );
    expect(failures.slice(0, 20)).toEqual([]);
    expect(publishes).toBeGreaterThan(100);
    expect(requests).toBeGreaterThan(400);
    // The slowed mirror really trailed: it had to answer some paths through the proxy fallback.
    expect(proxiedB).toBeGreaterThan(0);
  }, 60_000);
});
