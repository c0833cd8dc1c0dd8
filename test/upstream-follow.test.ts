/**
 * `metasync-primary --upstream` against the project's own primary as the
 * upstream (its change feed is Packagist-compatible), all as built processes:
 *
 *   upstream primary (publish API) <-- follower primary --upstream --> mirror <-- Debian's Composer 2.5
 *
 * The follower bootstraps the upstream's packages byte for byte, serves its own
 * packages.json, and an upstream update, new package and delete each reach the
 * mirror within the poll interval plus one second. A follower SIGKILLed in the
 * middle of its bootstrap resumes without fetching everything again.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveWithComposer } from './helpers/composer-client.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import {
  getChecked,
  makeTempDir,
  publishMany,
  publishPackage,
  PUBLISH_TOKEN,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { waitFor } from './helpers/wait-for.js';

const POLL_MS = 1_000;
const running: Array<RunningPrimary | RunningMirror> = [];
const proxies: FaultProxy[] = [];

afterAll(async () => {
  for (const daemon of running.reverse()) await daemon.stop();
  for (const proxy of proxies) await proxy.close();
  await removeTempDirs();
});

async function startFollower(upstreamUrl: string, extra: { dataDir?: string; args?: string[] } = {}): Promise<RunningPrimary> {
  const follower = await startPrimary({
    ...(extra.dataDir === undefined ? {} : { dataDir: extra.dataDir }),
    args: ['--upstream', upstreamUrl, '--upstream-poll-ms', String(POLL_MS), ...(extra.args ?? [])],
  });
  running.push(follower);
  return follower;
}

async function upstreamHealth(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${url}/health/upstream`, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** path -> sha256 of every p2 file a primary holds, from its signed journal (changes since 0). */
async function p2State(url: string): Promise<Map<string, string>> {
  const response = await fetch(`${url}/sync/v1/changes?since=0`, { signal: AbortSignal.timeout(10_000) });
  const batch = (await response.json()) as { more?: boolean; entries: { path: string; sha256?: string; deleted?: boolean }[] };
  expect(batch.more ?? false).toBe(false);
  const state = new Map<string, string>();
  for (const entry of batch.entries) {
    if (!entry.path.startsWith('p2/')) continue;
    if (entry.deleted === true) state.delete(entry.path);
    else state.set(entry.path, entry.sha256!);
  }
  return state;
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

describe('primary following an upstream metasync primary', () => {
  it('bootstraps byte for byte, serves Composer through a mirror, and carries update, new package and delete to the mirror within poll + 1 s', async () => {
    const upstream = await startPrimary();
    running.push(upstream);
    await publishPackage(upstream.url, 'acme/util', [{ version: '1.0.0' }, { version: '1.1.0' }, { version: 'dev-main' }]);
    await publishPackage(upstream.url, 'acme/lib', [{ version: '1.0.0', require: { 'acme/util': '^1.0' } }]);
    await publishPackage(upstream.url, 'acme/old', [{ version: '0.1.0' }]);
    await publishMany(upstream.url, { vendor: 'bulk', count: 30, version: '1.0.0' });

    const follower = await startFollower(upstream.url);
    const health = await waitFor(
      async () => {
        const answer = await upstreamHealth(follower.url);
        return answer.status === 200 ? answer : undefined;
      },
      { what: 'follower bootstrapped and fresh', timeoutMs: 30_000, intervalMs: 50 },
    );
    expect(health.body).toMatchObject({ phase: 'follow', fresh: true });

    // Every p2 file, exactly the upstream's bytes.
    const upstreamState = await p2State(upstream.url);
    expect(upstreamState.size).toBe(34);
    expect(await p2State(follower.url)).toEqual(upstreamState);
    const served = await getChecked(`${follower.url}/p2/acme/util~dev.json`);
    const original = await getChecked(`${upstream.url}/p2/acme/util~dev.json`);
    expect(served.status).toBe(200);
    expect(sha256(served.body)).toBe(sha256(original.body));

    // Its own root: relative URLs only, its own change feed; nothing of the upstream's host.
    const root = JSON.parse((await getChecked(`${follower.url}/packages.json`)).body.toString()) as Record<string, unknown>;
    expect(root).toEqual({ packages: [], 'metadata-url': '/p2/%package%.json', 'metadata-changes-url': '/metadata/changes.json' });
    const state = JSON.parse(await readFile(join(follower.dataDir, 'upstream-state.json'), 'utf8')) as Record<string, unknown>;
    expect(state).toMatchObject({ version: 1, phase: 'follow', upstream: `${upstream.url}/packages.json` });

    const mirror = await startMirror({ primaryUrl: follower.url, keyArg: follower.keyArg });
    running.push(mirror);
    await waitFor(async () => (await getChecked(`${mirror.url}/p2/acme/lib.json`)).status === 200, {
      what: 'mirror synced',
      timeoutMs: 20_000,
    });
    const first = await resolveWithComposer({ repoUrl: mirror.url, require: { 'acme/lib': '^1.0' } });
    expect(first.versions).toEqual({ 'acme/lib': '1.0.0', 'acme/util': '1.1.0' });

    /** Publishes on the upstream, then the ms until the mirror serves (from its own store, hash checked) what `check` wants. */
    async function msUntilMirror(path: string, check: (status: number, body: string) => boolean): Promise<number> {
      const startedMs = Date.now();
      await waitFor(
        async () => {
          const response = await getChecked(`${mirror.url}/${path}`);
          // A 404 may be confirmed with the primary (proxied); content must come from the mirror's own store.
          const own = response.status === 404 || response.headers.get('x-metasync-proxied') === null;
          return response.hashOk && own && check(response.status, response.body.toString());
        },
        { what: `${path} on the mirror`, timeoutMs: 15_000, intervalMs: 20 },
      );
      return Date.now() - startedMs;
    }

    await publishPackage(upstream.url, 'acme/lib', [
      { version: '1.0.0', require: { 'acme/util': '^1.0' } },
      { version: '1.2.0', require: { 'acme/util': '^1.1' } },
    ]);
    const updateMs = await msUntilMirror('p2/acme/lib.json', (status, body) => status === 200 && body.includes('"1.2.0"'));

    await publishPackage(upstream.url, 'acme/fresh', [{ version: '3.0.0' }]);
    const newMs = await msUntilMirror('p2/acme/fresh.json', (status) => status === 200);

    const removed = await fetch(`${upstream.url}/api/v1/packages/acme/old`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${PUBLISH_TOKEN}` },
      signal: AbortSignal.timeout(10_000),
    });
    expect(removed.status).toBe(200);
    const deleteMs = await msUntilMirror('p2/acme/old.json', (status) => status === 404);

    console.log(`upstream -> mirror: update ${updateMs} ms, new package ${newMs} ms, delete ${deleteMs} ms (poll ${POLL_MS} ms)`);
    for (const ms of [updateMs, newMs, deleteMs]) expect(ms).toBeLessThan(POLL_MS + 1_000);

    const after = await resolveWithComposer({ repoUrl: mirror.url, require: { 'acme/lib': '^1.2', 'acme/fresh': '^3.0' } });
    expect(after.versions).toEqual({ 'acme/lib': '1.2.0', 'acme/util': '1.1.0', 'acme/fresh': '3.0.0' });
    expect(await p2State(follower.url)).toEqual(await p2State(upstream.url));
  }, 120_000);

  it('resumes a bootstrap killed (SIGKILL) half way without fetching what it already committed', async () => {
    const upstream = await startPrimary();
    running.push(upstream);
    const count = 150;
    await publishMany(upstream.url, { vendor: 'many', count, version: '1.0.0', concurrency: 8 });
    // Slow every chunk down so the bootstrap is still running when it is killed.
    const proxy = await startFaultProxy({ upstream: upstream.url, mode: { kind: 'delay', ms: 15 } });
    proxies.push(proxy);
    const dataDir = await makeTempDir('e2e-follower-');
    const first = await startFollower(proxy.url, { dataDir, args: ['--upstream-concurrency', '2'] });
    const doneBeforeKill = await waitFor(
      async () => {
        const { body } = await upstreamHealth(first.url);
        const progress = body.progress as { done: number; total: number } | undefined;
        if (progress === undefined || progress.done >= progress.total * 0.8) return undefined;
        const { seq } = (await (await fetch(`${first.url}/sync/v1/state`)).json()) as { seq: number };
        return seq > 0 ? progress.done : undefined;
      },
      { what: 'bootstrap part way, a generation committed', timeoutMs: 30_000, intervalMs: 20 },
    );
    await first.kill();
    const state = JSON.parse(await readFile(join(dataDir, 'upstream-state.json'), 'utf8')) as { phase: string };
    expect(state.phase).toBe('bootstrap');
    const heldAtKill = (await p2StateOffline(dataDir)).size;

    proxy.setMode({ kind: 'pass' });
    const linesBefore = proxy.requestLines().length;
    const second = await startFollower(proxy.url, { dataDir });
    await waitFor(async () => (await upstreamHealth(second.url)).status === 200, {
      what: 'resumed bootstrap finished',
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    const p2Requests = proxy
      .requestLines()
      .slice(linesBefore)
      .filter((line) => line.startsWith('GET /p2/')).length;
    console.log(
      `bootstrap resume: killed after ${doneBeforeKill} of ${count * 2} files (${heldAtKill} committed), ${p2Requests} p2 requests after restart`,
    );
    expect(heldAtKill).toBeGreaterThan(0);
    expect(p2Requests).toBeLessThanOrEqual(count * 2 - heldAtKill);
    expect(await p2State(second.url)).toEqual(await p2State(upstream.url));
  }, 120_000);
});

/** The p2 files a stopped primary's data dir holds, read back by starting a primary on it without --upstream (which changes nothing). */
async function p2StateOffline(dataDir: string): Promise<Map<string, string>> {
  const probe = await startPrimary({ dataDir });
  try {
    return await p2State(probe.url);
  } finally {
    await probe.stop();
  }
}
