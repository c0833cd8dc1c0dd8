/**
 * `metasync-primary --upstream` (the built daemon) against a loopback double of
 * packagist.org (helpers/packagist-double.ts): absolute metadata-url, the
 * change feed's 400-then-since protocol, resync, gzip, If-Modified-Since, and
 * a bad upstream's faults: 429 with Retry-After, 5xx, truncated bodies, a CDN
 * serving an older file than announced, a file for another package, a feed
 * going back in time, invalid names in the list, an upstream that is down or slow.
 * Through all of it the follower serves its last good generation, says why it
 * is stale, and converges once the upstream behaves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveWithComposer } from './helpers/composer-client.js';
import { getChecked, removeTempDirs, startPrimary, type RunningPrimary } from './helpers/mirror-cluster.js';
import { startPackagistDouble, type PackagistDouble } from './helpers/packagist-double.js';
import { waitFor } from './helpers/wait-for.js';

const POLL_MS = 500;
let double: PackagistDouble;
let follower: RunningPrimary;

function p2(name: string, versions: Array<{ version: string; require?: Record<string, string> }>): object {
  return {
    packages: {
      [name]: versions.map((v) => ({
        name,
        version: v.version,
        version_normalized: v.version.startsWith('dev-') ? v.version : `${v.version}.0`,
        ...(v.require === undefined ? {} : { require: v.require }),
        dist: { type: 'zip', url: `https://example.invalid/${name}/${v.version}.zip`, reference: 'abc' },
      })),
    },
    minified: 'composer/2.0',
  };
}

async function health(): Promise<{ status: number; body: { fresh: boolean; staleReason?: string; phase: string } }> {
  const response = await fetch(`${follower.url}/health/upstream`, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: (await response.json()) as { fresh: boolean; staleReason?: string; phase: string } };
}

async function served(key: string): Promise<{ status: number; body: Buffer }> {
  const response = await getChecked(`${follower.url}/p2/${key}.json`);
  return { status: response.status, body: response.body };
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${follower.url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

const waitFresh = (what: string, timeoutMs = 20_000) =>
  waitFor(async () => (await health()).status === 200, { what, timeoutMs, intervalMs: 50 });

beforeAll(async () => {
  double = await startPackagistDouble();
  double.setList(['acme/a', 'acme/b', 'acme/c', '../../etc/passwd', 'Acme/Upper', 'acme/a/../../x']);
  double.put('acme/a', p2('acme/a', [{ version: '1.1.0' }, { version: '1.0.0' }]), { silent: true });
  double.put('acme/b', p2('acme/b', [{ version: '2.0.0', require: { 'acme/a': '^1.0' } }]), { silent: true });
  double.put('acme/b~dev', p2('acme/b', [{ version: 'dev-main' }]), { silent: true });
  double.put('acme/c', p2('acme/c', [{ version: '1.0.0' }]), { silent: true });
  double.fault('acme/a', { kind: '429', retryAfterS: 1 });
  double.fault('acme/b~dev', { kind: '500' });
  double.fault('acme/c', { kind: 'truncate' });
});

afterAll(async () => {
  await follower?.stop();
  await double?.close();
  await removeTempDirs();
});

describe('primary following a packagist.org double', () => {
  it('bootstraps through 429 (Retry-After honoured), 500 and a truncated body, refusing invalid names, byte for byte', async () => {
    follower = await startPrimary({
      args: ['--upstream', double.url, '--upstream-poll-ms', String(POLL_MS), '--upstream-timeout-ms', '2000'],
    });
    await waitFresh('bootstrap done', 30_000);
    for (const key of ['acme/a', 'acme/b', 'acme/b~dev', 'acme/c']) {
      const answer = await served(key);
      expect(answer.status, key).toBe(200);
      expect(answer.body.equals(double.body(key)!), key).toBe(true);
    }
    expect((await served('acme/a~dev')).status).toBe(404);

    const requests = double.requests();
    const forA = requests.filter((r) => r.path === '/repo/p2/acme/a.json');
    expect(forA[0]?.status).toBe(429);
    expect(forA[1]!.atMs - forA[0]!.atMs).toBeGreaterThanOrEqual(950);
    expect(requests.some((r) => r.path.includes('etc') || r.path.includes('Upper') || r.path.includes('..'))).toBe(false);
    expect(await metric('metasync_primary_upstream_refused_total', 'reason="list-name"')).toBe(3);
    expect(await metric('metasync_primary_upstream_retries_total', 'reason="status-429"')).toBeGreaterThanOrEqual(1);
    expect(await metric('metasync_primary_upstream_retries_total', 'reason="status-500"')).toBeGreaterThanOrEqual(1);
    // Cut after the headers or during the body, depending on how the packets fall.
    const cut =
      (await metric('metasync_primary_upstream_retries_total', 'reason="closed"')) +
      (await metric('metasync_primary_upstream_retries_total', 'reason="truncated"'));
    expect(cut).toBeGreaterThanOrEqual(1);

    const root = (await getChecked(`${follower.url}/packages.json`)).body.toString();
    expect(JSON.parse(root)).toMatchObject({ 'metadata-url': '/p2/%package%.json', 'metadata-changes-url': '/metadata/changes.json' });
    expect(root).not.toContain(new URL(double.url).host);
    const status = (await (await fetch(`${follower.url}/status/data.json`)).json()) as { upstream: { phase: string; fresh: boolean } };
    expect(status.upstream).toMatchObject({ phase: 'follow', fresh: true });
    const resolved = await resolveWithComposer({ repoUrl: follower.url, require: { 'acme/b': '^2.0' } });
    expect(resolved.versions).toEqual({ 'acme/b': '2.0.0', 'acme/a': '1.1.0' });
  }, 90_000);

  it('carries a new package and a delete within poll + 1 s, and retries an update its CDN still serves old', async () => {
    let startedMs = Date.now();
    double.put('acme/d', p2('acme/d', [{ version: '0.1.0' }]));
    await waitFor(async () => (await served('acme/d')).status === 200, { what: 'new package', timeoutMs: 10_000, intervalMs: 20 });
    const newMs = Date.now() - startedMs;
    startedMs = Date.now();
    double.remove('acme/c');
    await waitFor(async () => (await served('acme/c')).status === 404, { what: 'deleted package', timeoutMs: 10_000, intervalMs: 20 });
    const deleteMs = Date.now() - startedMs;
    console.log(`packagist double -> follower: new package ${newMs} ms, delete ${deleteMs} ms (poll ${POLL_MS} ms)`);
    expect(newMs).toBeLessThan(POLL_MS + 1_000);
    expect(deleteMs).toBeLessThan(POLL_MS + 1_000);

    const before = double.requests().length;
    double.put('acme/a', p2('acme/a', [{ version: '1.2.0' }, { version: '1.1.0' }, { version: '1.0.0' }]));
    double.fault('acme/a', { kind: 'stale' });
    await waitFor(async () => (await served('acme/a')).body.equals(double.body('acme/a')!), {
      what: 'update past the lagging CDN',
      timeoutMs: 15_000,
      intervalMs: 50,
    });
    const asked = double
      .requests()
      .slice(before)
      .filter((r) => r.path === '/repo/p2/acme/a.json');
    expect(asked.length).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it("commits one poll's changes as one generation", async () => {
    const seqOf = async (): Promise<number> => ((await (await fetch(`${follower.url}/sync/v1/state`)).json()) as { seq: number }).seq;
    await waitFresh('fresh before the batch');
    const before = await seqOf();
    for (const name of ['acme/g1', 'acme/g2', 'acme/g3']) double.put(name, p2(name, [{ version: '1.0.0' }]));
    await waitFor(async () => (await served('acme/g3')).status === 200 && (await served('acme/g1')).status === 200, {
      what: 'batch followed',
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    expect(await seqOf()).toBe(before + 1);
    const changes = (await (await fetch(`${follower.url}/sync/v1/changes?since=${before}`)).json()) as { entries: { path: string }[] };
    expect(changes.entries.map((e) => e.path).sort()).toEqual(['p2/acme/g1.json', 'p2/acme/g2.json', 'p2/acme/g3.json']);
  }, 30_000);

  it('refuses a p2 file holding another package: keeps serving the last good one, reports stale, converges when fixed', async () => {
    const good = double.body('acme/b')!;
    double.put('acme/b', p2('evil/other', [{ version: '6.6.6' }]));
    await waitFor(async () => (await health()).body.staleReason?.includes('must hold exactly the package acme/b') === true, {
      what: 'stale for the malformed file',
      timeoutMs: 15_000,
      intervalMs: 50,
    });
    expect((await health()).status).toBe(503);
    expect((await served('acme/b')).body.equals(good)).toBe(true);
    expect(await metric('metasync_primary_upstream_refused_total', 'reason="p2-package"')).toBeGreaterThanOrEqual(1);
    expect(await metric('metasync_primary_upstream_stale', 'reason="METASYNC_ERR_UPSTREAM_INVALID"')).toBe(1);

    double.put('acme/b', p2('acme/b', [{ version: '2.1.0', require: { 'acme/a': '^1.0' } }]));
    await waitFresh('fresh again after the fix');
    expect((await served('acme/b')).body.equals(double.body('acme/b')!)).toBe(true);
  }, 60_000);

  it('treats a change feed going back in time as stale, and follows again once it is past the cursor', async () => {
    double.setClockOffsetMs(-3_600_000);
    await waitFor(async () => (await health()).body.staleReason?.includes('before our cursor') === true, {
      what: 'stale for the backwards feed',
      timeoutMs: 15_000,
      intervalMs: 50,
    });
    expect(await metric('metasync_primary_upstream_refused_total', 'reason="changes-backwards"')).toBeGreaterThanOrEqual(1);
    double.setClockOffsetMs(0);
    await waitFresh('fresh after the feed recovered');
  }, 60_000);

  it('keeps serving while the upstream is down, reports it unreachable, and converges when it is back', async () => {
    double.setDown(true);
    await waitFor(async () => (await health()).body.staleReason?.startsWith('METASYNC_ERR_UPSTREAM_UNREACHABLE') === true, {
      what: 'stale: unreachable',
      timeoutMs: 20_000,
      intervalMs: 50,
    });
    expect((await served('acme/a')).status).toBe(200);
    double.setDown(false);
    double.put('acme/d', p2('acme/d', [{ version: '0.2.0' }, { version: '0.1.0' }]));
    await waitFor(async () => (await served('acme/d')).body.equals(double.body('acme/d')!), {
      what: 'converged after the outage',
      timeoutMs: 40_000,
      intervalMs: 100,
    });
    await waitFresh('fresh after the outage', 40_000);
  }, 90_000);

  it('deletes a held ~dev file of a package whose deletion the feed names only as vendor/name', async () => {
    double.put('acme/f', p2('acme/f', [{ version: '1.0.0' }]));
    double.put('acme/f~dev', p2('acme/f', [{ version: 'dev-main' }]));
    await waitFor(async () => (await served('acme/f~dev')).status === 200, {
      what: 'acme/f~dev followed',
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    double.remove('acme/f~dev', { silent: true });
    double.remove('acme/f');
    await waitFor(async () => (await served('acme/f')).status === 404 && (await served('acme/f~dev')).status === 404, {
      what: 'both files of acme/f deleted',
      timeoutMs: 10_000,
      intervalMs: 20,
    });
  }, 30_000);

  it('reports a slow upstream (timeouts) as unreachable, and follows again once it answers in time', async () => {
    double.setDelayMs(3_000);
    await waitFor(async () => (await health()).body.staleReason?.startsWith('METASYNC_ERR_UPSTREAM_UNREACHABLE') === true, {
      what: 'stale: timed out',
      timeoutMs: 40_000,
      intervalMs: 100,
    });
    expect(await metric('metasync_primary_upstream_retries_total', 'reason="timeout"')).toBeGreaterThanOrEqual(1);
    expect((await served('acme/a')).status).toBe(200);
    double.setDelayMs(0);
    await waitFresh('fresh once the upstream is fast again', 40_000);
  }, 90_000);

  it('resyncs when the feed says so: re-lists, deletes what left the list, asks held files conditionally', async () => {
    double.setList(['acme/a', 'acme/b', 'acme/e']);
    double.put('acme/e', p2('acme/e', [{ version: '5.0.0' }]), { silent: true });
    const before = double.requests().length;
    double.forceResync();
    await waitFor(async () => (await served('acme/e')).status === 200 && (await served('acme/d')).status === 404, {
      what: 'resync reconciled',
      timeoutMs: 20_000,
      intervalMs: 50,
    });
    await waitFresh('fresh after the resync');
    const after = double.requests().slice(before);
    expect(after.some((r) => r.path === '/packages/list.json')).toBe(true);
    const forA = after.find((r) => r.path === '/repo/p2/acme/a.json');
    expect(forA).toMatchObject({ ifModifiedSince: true, status: 304 });
    expect((await served('acme/a')).body.equals(double.body('acme/a')!)).toBe(true);
  }, 60_000);
});
