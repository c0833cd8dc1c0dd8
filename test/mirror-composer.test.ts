import { get } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveWithComposer } from './helpers/composer-client.js';
import {
  getChecked,
  publishPackage,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * Debian's Composer 2.5, configured with nothing but one mirror's URL, resolves
 * a project; a version published on the primary afterwards is served by every
 * mirror within a second of the publish call returning, and Composer resolves
 * it through each of them.
 */
let primary: RunningPrimary | undefined;
const mirrors: RunningMirror[] = [];

afterAll(async () => {
  for (const mirror of mirrors) await mirror.stop();
  await primary?.stop();
  await removeTempDirs();
});

describe('Composer through mirrors', () => {
  it('resolves from a mirror alone, and sees a new publish through every mirror within a second', async () => {
    primary = await startPrimary();
    await publishPackage(primary.url, 'acme/util', [{ version: '1.0.0' }, { version: '1.1.0' }]);
    await publishPackage(primary.url, 'acme/lib', [{ version: '1.0.0', require: { 'acme/util': '^1.0' } }]);
    for (let i = 0; i < 2; i++) mirrors.push(await startMirror({ primaryUrl: primary.url, keyArg: primary.keyArg }));
    for (const mirror of mirrors) {
      await waitFor(async () => (await getChecked(`${mirror.url}/p2/acme/lib.json`)).status === 200, { what: `${mirror.url} synced` });
    }

    const first = await resolveWithComposer({ repoUrl: mirrors[0]!.url, require: { 'acme/lib': '^1.0' } });
    expect(first.versions).toEqual({ 'acme/lib': '1.0.0', 'acme/util': '1.1.0' });

    await publishPackage(primary.url, 'acme/lib', [
      { version: '1.0.0', require: { 'acme/util': '^1.0' } },
      { version: '1.2.0', require: { 'acme/util': '^1.1' } },
    ]);
    const publishedAt = Date.now();
    const visibleMs = await Promise.all(
      mirrors.map(async (mirror) => {
        await waitFor(
          async () => {
            const response = await getChecked(`${mirror.url}/p2/acme/lib.json`);
            return response.hashOk && response.headers.get('x-metasync-proxied') === null && response.body.toString().includes('"1.2.0"');
          },
          { what: `1.2.0 on ${mirror.url}`, timeoutMs: 5_000, intervalMs: 5 },
        );
        return Date.now() - publishedAt;
      }),
    );
    console.log(`composer: publish visible on ${mirrors.length} mirrors after ${visibleMs.join(', ')} ms`);
    for (const ms of visibleMs) expect(ms).toBeLessThan(1_000);

    for (const mirror of mirrors) {
      const result = await resolveWithComposer({ repoUrl: mirror.url, require: { 'acme/lib': '^1.0' } });
      expect(result.versions['acme/lib']).toBe('1.2.0');
    }
  }, 90_000);

  it('stops cleanly on SIGTERM (exit 0, a request sent just before still answered) and restarts into the same generation', async () => {
    const mirror = mirrors.pop()!;
    const seq = (await getChecked(`${mirror.url}/packages.json`)).headers.get('x-metasync-seq');
    const inFlight = getSent(`${mirror.url}/p2/acme/lib.json`);
    await inFlight.sent;
    await mirror.stop();
    expect(await inFlight.status).toBe(200);
    expect(await mirror.exited).toEqual({ code: 0, signal: null });
    expect(mirror.logs.some((line) => line.msg === 'stopped')).toBe(true);
    const again = await startMirror({ primaryUrl: primary!.url, keyArg: primary!.keyArg, dataDir: mirror.dataDir });
    mirrors.push(again);
    expect(again.logs.find((line) => line.msg === 'listening')?.seq).toBe(Number(seq));
  }, 30_000);
});

/**
 * A GET whose request bytes are on the wire when `sent` resolves. Node 24's fetch
 * writes them some ticks after the call, so a SIGTERM sent right after a fetch
 * could arrive first, and the test would measure a request sent after the stop.
 */
function getSent(url: string): { sent: Promise<void>; status: Promise<number> } {
  let onSent!: () => void;
  const sent = new Promise<void>((resolve) => (onSent = resolve));
  const status = new Promise<number>((resolve, reject) => {
    const request = get(url, { agent: false, timeout: 10_000 }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
      response.on('error', reject);
    });
    request.on('finish', onSent);
    request.on('timeout', () => request.destroy(new Error(`GET ${url}: no answer in 10 s`)));
    request.on('error', reject);
  });
  return { sent, status };
}
