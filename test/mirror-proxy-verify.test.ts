import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PUBLISH_TOKEN,
  getChecked,
  publishPackage,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { appliedSeq, metricValue } from './helpers/read-load.js';
import { startRewriteHop, type HopAnswer, type Rewrite, type RewriteHop } from './helpers/rewrite-hop.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * The proxy fallback behind a hostile hop, across real processes: the real
 * primary signs its repository answers, a hop between it and the mirror
 * rewrites them, and a client asks the mirror for paths it lacks (the hop
 * holds the sync path, so the mirror stays at its applied seq and must proxy).
 * Whatever the hop does, a client gets the primary's genuine bytes with the
 * mirror's own headers, or a 404 no-store that a metric and a warning count;
 * never a byte the hop made up.
 */
const FORGED_MARKER = 'evil.example';
const FORGED_JSON = `{"packages":{"acme/fresh":[{"name":"acme/fresh","version":"6.6.6","dist":{"type":"zip","url":"https://${FORGED_MARKER}/x.zip"}}]},"minified":"composer/2.0"}`;

let primary: RunningPrimary | undefined;
let hop: RewriteHop | undefined;
let mirror: RunningMirror | undefined;
/** The primary's genuine answer for p2/acme/gone.json while it existed, recorded by the hop. */
let recordedGone: HopAnswer | undefined;
/** The mirror's applied seq while the hop holds sync. */
let heldSeq = 0;

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

beforeAll(async () => {
  primary = await startPrimary();
  const p = primary;
  hop = await startRewriteHop(p.url);
  const h = hop;
  await publishPackage(p.url, 'acme/base', [{ version: '1.0.0' }]);
  const goneSeq = await publishPackage(p.url, 'acme/gone', [{ version: '1.0.0' }]);
  mirror = await startMirror({ primaryUrl: h.url, keyArg: p.keyArg, args: ['--poll-interval-ms', '200', '--proxy-timeout-ms', '2000'] });
  const m = mirror;
  await waitFor(async () => (await appliedSeq(m.url)) >= goneSeq, { what: `mirror at seq ${goneSeq}`, timeoutMs: 15_000 });
  // The attacker's recording: a genuine signed answer, then the package is deleted and the mirror applies that.
  recordedGone = await h.fetchUpstream('/p2/acme/gone.json');
  expect(recordedGone.status).toBe(200);
  const deleted = await fetch(`${p.url}/api/v1/packages/acme/gone`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${PUBLISH_TOKEN}` },
    signal: AbortSignal.timeout(10_000),
  });
  expect(deleted.status).toBeLessThan(300);
  const deletedSeq = Number(((await deleted.json()) as { seq: number }).seq);
  await waitFor(async () => (await appliedSeq(m.url)) >= deletedSeq, { what: `mirror at seq ${deletedSeq}`, timeoutMs: 15_000 });
  // From here the mirror hears nothing: what the primary publishes it can only proxy.
  h.setSync('hold');
  heldSeq = await appliedSeq(m.url);
  await publishPackage(p.url, 'acme/fresh', [{ version: '1.0.0', description: 'the genuine one' }]);
  await publishPackage(p.url, 'acme/other', [{ version: '2.0.0' }]);
}, 60_000);

afterAll(async () => {
  await mirror?.stop();
  await hop?.close();
  await primary?.stop();
  await removeTempDirs();
});

async function refusals(reason: string): Promise<number> {
  return metricValue(mirror!.url, 'metasync_mirror_proxy_refused_total', `reason="${reason}"`);
}

/** Asks the mirror for `path` through `rewrite`: expects 404 no-store without a forged byte, counted under `reason` and logged. */
async function expectRefused(path: string, reason: string, rewrite: Rewrite): Promise<void> {
  const m = mirror!;
  const before = await refusals(reason);
  const rewrittenBefore = hop!.rewritten();
  hop!.setRewrite(rewrite);
  const response = await getChecked(`${m.url}/${path}`);
  hop!.setRewrite(undefined);
  expect(hop!.rewritten(), 'the hop rewrote the answer').toBe(rewrittenBefore + 1);
  expect({ status: response.status, cacheControl: response.headers.get('cache-control') }).toEqual({
    status: 404,
    cacheControl: 'no-store',
  });
  expect(response.body.toString()).not.toContain(FORGED_MARKER);
  expect(response.body.toString()).not.toContain('<html');
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(await refusals(reason)).toBe(before + 1);
  await waitFor(() => m.logs.some((entry) => entry.msg === 'refused proxied answer' && entry.path === path && entry.reason === reason), {
    what: `a warning naming ${path} and ${reason}`,
    timeoutMs: 5_000,
  });
  expect(m.logs.find((entry) => entry.msg === 'refused proxied answer' && entry.path === path)?.level).toBe(40);
}

/** The primary's headers minus `drop` (and its content-encoding: a forger sends its body as is) plus `set`. */
function forgedHeaders(
  headers: HopAnswer['headers'],
  change: { drop?: (name: string) => boolean; set?: Record<string, string> },
): HopAnswer['headers'] {
  const kept = Object.entries(headers).filter(([name]) => name !== 'content-encoding' && change.drop?.(name) !== true);
  return { ...Object.fromEntries(kept), ...change.set };
}

describe('proxy fallback behind a rewriting hop', () => {
  it("serves the primary's genuine bytes with the mirror's own Content-Type and cache headers, even when the hop relabels them", async () => {
    const m = mirror!;
    const genuine = await hop!.fetchUpstream('/p2/acme/fresh.json');
    expect(genuine.status).toBe(200);
    for (const rewrite of [
      undefined,
      ({ answer }: { answer: HopAnswer }) => ({
        ...answer,
        headers: { ...answer.headers, 'content-type': 'text/html', 'cache-control': 'public, max-age=31536000, immutable' },
      }),
    ]) {
      hop!.setRewrite(rewrite);
      const response = await getChecked(`${m.url}/p2/acme/fresh.json`);
      hop!.setRewrite(undefined);
      expect(response.status).toBe(200);
      expect(response.body.equals(genuine.body)).toBe(true);
      expect(response.body.toString()).toContain('the genuine one');
      expect(response.etagSha).toBe(sha256(genuine.body));
      expect(response.headers.get('content-type')).toBe('application/json');
      expect(response.headers.get('cache-control')).toBe('public, max-age=60, stale-while-revalidate=30');
      expect(response.headers.get('last-modified')).toBe(genuine.headers['last-modified']);
      expect(response.headers.get('x-metasync-proxied')).toBe('1');
      expect(response.headers.get('x-metasync-seq')).toBe(String(heldSeq));
    }
    // Still held: the mirror did not apply it, it proxied it.
    expect(await appliedSeq(m.url)).toBe(heldSeq);
  });

  it('keeps a 404 from the primary a 404 no-store, counting no refusal', async () => {
    const before = await metricValue(mirror!.url, 'metasync_mirror_proxy_refused_total');
    const response = await getChecked(`${mirror!.url}/p2/acme/never-published.json`);
    expect({ status: response.status, cacheControl: response.headers.get('cache-control') }).toEqual({
      status: 404,
      cacheControl: 'no-store',
    });
    expect(await metricValue(mirror!.url, 'metasync_mirror_proxy_refused_total')).toBe(before);
  });

  it('refuses a forged answer stripped of the signed fields (no ETag)', async () => {
    await expectRefused('p2/acme/fresh.json', 'unsigned', ({ answer }) => ({
      status: 200,
      headers: forgedHeaders(answer.headers, { drop: (name) => name.startsWith('x-metasync-') || name === 'etag' }),
      body: Buffer.from(FORGED_JSON),
    }));
  });

  it('refuses forged JSON that comes with its own ETag and sha256 header (the signature no longer matches)', async () => {
    await expectRefused('p2/acme/fresh.json', 'bad-signature', ({ answer }) => ({
      status: 200,
      headers: forgedHeaders(answer.headers, { set: { etag: `"${sha256(FORGED_JSON)}"`, 'x-metasync-sha256': sha256(FORGED_JSON) } }),
      body: Buffer.from(FORGED_JSON),
    }));
  });

  it('refuses forged JSON under the genuine signed fields (the hash does not match)', async () => {
    await expectRefused('p2/acme/fresh.json', 'hash-mismatch', ({ answer }) => ({
      status: 200,
      headers: forgedHeaders(answer.headers, { set: { etag: `"${sha256(FORGED_JSON)}"` } }),
      body: Buffer.from(FORGED_JSON),
    }));
  });

  it("refuses another path's genuinely signed answer", async () => {
    await expectRefused('p2/acme/evil.json', 'wrong-path', async () => hop!.fetchUpstream('/p2/acme/other.json'));
  });

  it('refuses an older genuinely signed answer: a deleted package replayed below the applied seq', async () => {
    const recorded = recordedGone!;
    expect(Number(recorded.headers['x-metasync-seq'])).toBeLessThan(heldSeq);
    await expectRefused('p2/acme/gone.json', 'stale', () => recorded);
  });

  it('refuses an HTML page served as text/html in place of the answer', async () => {
    const page = `<html><body><a href="https://${FORGED_MARKER}/">update</a></body></html>`;
    await expectRefused('p2/acme/fresh.json', 'hash-mismatch', ({ answer }) => ({
      status: 200,
      headers: forgedHeaders(answer.headers, { drop: (name) => name === 'etag', set: { 'content-type': 'text/html; charset=utf-8' } }),
      body: Buffer.from(page),
    }));
  });

  it('converges once the hop lets sync through, then serves the path from its own store', async () => {
    const m = mirror!;
    hop!.setSync('pass');
    await waitFor(async () => (await getChecked(`${m.url}/p2/acme/fresh.json`)).headers.get('x-metasync-proxied') === null, {
      what: 'acme/fresh served from the store',
      timeoutMs: 15_000,
      intervalMs: 100,
    });
    const response = await getChecked(`${m.url}/p2/acme/fresh.json`);
    expect(response.status).toBe(200);
    expect(response.body.toString()).toContain('the genuine one');
  });
});
