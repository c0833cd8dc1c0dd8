import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
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
import { appliedSeq, compareWithPrimary, headSeq, percentileMs } from './helpers/read-load.js';
import { waitFor } from './helpers/wait-for.js';
import { freePort } from './helpers/free-port.js';

/**
 * mirror -> fault proxy (blackhole: accepts, reads, never answers) -> primary.
 * The mirror must not hang its serving on the dead hop: known paths keep their
 * normal latency, unknown paths are a 404 no-store once the (short) proxy
 * timeout runs out, even with more waiting misses than the proxy pool has
 * connections, and nothing is ever a 5xx. Once the hop is clean the mirror
 * catches up with what was published meanwhile and a new publish converges.
 */
const PROXY_TIMEOUT_MS = 500;
const MAX_LAG_MS = 2_000;
const COUNT = 30;
const PARALLEL_MISSES = 40;
const HEARTBEAT_MS = 250;
const SLOW_POLL_MS = 8_000;
const MISS_ROUNDS = 3;

let primary: RunningPrimary | undefined;
let proxy: FaultProxy | undefined;
let mirror: RunningMirror | undefined;

afterEach(async () => {
  await mirror?.stop();
  await proxy?.close();
  await primary?.stop();
  mirror = undefined;
  proxy = undefined;
  primary = undefined;
});

afterAll(removeTempDirs);

async function timedGet(url: string): Promise<{ ms: number; response: Awaited<ReturnType<typeof getChecked>> }> {
  const started = performance.now();
  const response = await getChecked(url);
  return { ms: performance.now() - started, response };
}

describe('mirror behind a blackholed primary', () => {
  it('serves known paths at normal speed, 404s unknown paths within the proxy timeout, never 5xx, and converges once the hop is clean', async () => {
    primary = await startPrimary();
    const p = primary;
    await publishMany(p.url, { vendor: 'acme', count: COUNT, version: '1.0.0', padBytes: 2_000 });
    proxy = await startFaultProxy({ upstream: p.url });
    const px = proxy;
    mirror = await startMirror({
      primaryUrl: px.url,
      keyArg: p.keyArg,
      args: [
        '--poll-interval-ms',
        '200',
        '--proxy-timeout-ms',
        String(PROXY_TIMEOUT_MS),
        '--connect-timeout-ms',
        '300',
        '--request-timeout-ms',
        '1000',
        '--max-lag-ms',
        String(MAX_LAG_MS),
      ],
    });
    const m = mirror;
    const head0 = await headSeq(p.url);
    await waitFor(async () => (await appliedSeq(m.url)) === head0, { what: `mirror at seq ${head0}`, timeoutMs: 15_000 });
    const known = ['packages.json', ...Array.from({ length: COUNT }, (_, i) => `p2/acme/p${i}.json`)];
    const problems: string[] = [];
    const readKnown = async (rounds: number): Promise<number[]> => {
      const latencies: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const { ms, response } = await timedGet(`${m.url}/${known[i % known.length]!}`);
        if (response.status !== 200 || !response.hashOk || response.etagSha === undefined)
          problems.push(`known ${known[i % known.length]}: ${response.status} hashOk=${response.hashOk}`);
        latencies.push(ms);
      }
      return latencies;
    };
    await readKnown(known.length); // warm the hot cache, as the blackhole phase will find it
    const baseline = await readKnown(150);

    px.setMode({ kind: 'blackhole' });
    px.destroyAll();
    const blackholedAt = Date.now();
    // Published while the hop is dead: unknown as of the mirror's generation.
    const lateSeq = await publishPackage(p.url, 'acme/late', [{ version: '1.0.0' }]);
    const unknown = ['p2/acme/late.json', 'p2/acme/never-published.json', 'p2/acme/never~dev.json'];
    const missLatencies: number[] = [];
    const duringKnown: number[] = [];
    for (let round = 0; round < MISS_ROUNDS; round++) {
      // More waiting misses than the proxy's 16 pooled connections, with known reads beside them.
      const misses = Promise.all(
        Array.from({ length: PARALLEL_MISSES }, async (_, i) => {
          const path = unknown[i % unknown.length]!;
          const { ms, response } = await timedGet(`${m.url}/${path}`);
          missLatencies.push(ms);
          if (response.status !== 404 || response.headers.get('cache-control') !== 'no-store')
            problems.push(`unknown ${path}: ${response.status} ${response.headers.get('cache-control')}`);
        }),
      );
      duringKnown.push(...(await readKnown(60)));
      await misses;
    }
    // Freshness does not hang on the hop either: silence beyond --max-lag-ms turns it stale.
    await waitFor(async () => (await getChecked(`${m.url}/health/fresh`)).status === 503, {
      what: 'stale while blackholed',
      timeoutMs: MAX_LAG_MS + 2_000,
      intervalMs: 50,
    });
    const staleAfterMs = Date.now() - blackholedAt;
    expect(problems).toEqual([]);
    expect(await appliedSeq(m.url)).toBe(head0);
    // The blackhole really held requests: a miss waited for the proxy timeout, not for a refused connect.
    expect(percentileMs(missLatencies, 50)).toBeGreaterThanOrEqual(PROXY_TIMEOUT_MS - 50);
    expect(percentileMs(missLatencies, 50)).toBeLessThan(PROXY_TIMEOUT_MS + 300);
    expect(Math.max(...missLatencies)).toBeLessThan(PROXY_TIMEOUT_MS + 1_500);
    // Known paths never wait for the primary: their latency stays that of a healthy hop.
    expect(percentileMs(duringKnown, 50)).toBeLessThan(Math.max(20, 4 * percentileMs(baseline, 50)));
    expect(percentileMs(duringKnown, 99)).toBeLessThan(250);

    px.setMode({ kind: 'pass' });
    px.destroyAll();
    const cleanAt = Date.now();
    await waitFor(async () => (await appliedSeq(m.url)) >= lateSeq, {
      what: `catch-up to seq ${lateSeq}`,
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    const catchUpMs = Date.now() - cleanAt;
    await waitFor(async () => (await getChecked(`${m.url}/health/fresh`)).status === 200, {
      what: 'fresh after the hop cleared',
      timeoutMs: 5_000,
    });
    const seq = await publishPackage(p.url, 'acme/p0', [{ version: '1.0.0' }, { version: '1.1.0' }]);
    const publishedAt = Date.now();
    await waitFor(async () => (await appliedSeq(m.url)) >= seq, { what: `publish ${seq} visible`, timeoutMs: 5_000, intervalMs: 10 });
    const visibleMs = Date.now() - publishedAt;
    const late = await getChecked(`${m.url}/p2/acme/late.json`);
    expect(late.status).toBe(200);
    expect(late.headers.get('x-metasync-proxied')).toBeNull();
    const { paths, problems: mismatches } = await compareWithPrimary({ mirrorUrl: m.url, primaryUrl: p.url, seq: await headSeq(p.url) });
    expect(mismatches).toEqual([]);
    console.log(
      `blackhole: ${missLatencies.length} unknown-path 404s p50 ${percentileMs(missLatencies, 50).toFixed(0)} ms max ${Math.max(...missLatencies).toFixed(0)} ms (proxy timeout ${PROXY_TIMEOUT_MS}); ` +
        `known p50/p99 ${percentileMs(baseline, 50).toFixed(1)}/${percentileMs(baseline, 99).toFixed(1)} ms healthy vs ${percentileMs(duringKnown, 50).toFixed(1)}/${percentileMs(duringKnown, 99).toFixed(1)} ms blackholed; ` +
        `stale ${staleAfterMs} ms into the blackhole (max lag ${MAX_LAG_MS}); caught up ${catchUpMs} ms after the hop cleared; next publish visible in ${visibleMs} ms; ${paths} paths verified`,
    );
    expect(catchUpMs).toBeLessThan(5_000);
    expect(visibleMs).toBeLessThan(2_000);
  }, 40_000);

  it('resumes push (not just polling) after a partition heals whose far end dropped the stream silently', async () => {
    const listen = `127.0.0.1:${await freePort()}`;
    const primaryArgs = ['--heartbeat-ms', String(HEARTBEAT_MS)];
    primary = await startPrimary({ listen, args: primaryArgs });
    const dataDir = primary.dataDir;
    const keyArg = primary.keyArg;
    const primaryUrl = primary.url;
    await publishPackage(primaryUrl, 'acme/push', [{ version: '1.0.0' }]);
    proxy = await startFaultProxy({ upstream: primaryUrl });
    const px = proxy;
    mirror = await startMirror({
      primaryUrl: px.url,
      keyArg,
      // A slow poll: only the push stream can make a publish visible fast.
      args: [
        '--poll-interval-ms',
        String(SLOW_POLL_MS),
        '--events-idle-timeout-ms',
        String(4 * HEARTBEAT_MS),
        '--request-timeout-ms',
        '1000',
        '--connect-timeout-ms',
        '300',
        '--max-lag-ms',
        '20000',
      ],
    });
    const m = mirror;
    await waitFor(async () => (await appliedSeq(m.url)) === (await headSeq(primaryUrl)), { what: 'mirror at head', timeoutMs: 15_000 });
    let version = 1;
    const visibility = async (rounds: number): Promise<number[]> => {
      const times: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const seq = await publishPackage(primaryUrl, 'acme/push', [{ version: '1.0.0' }, { version: `1.${version++}.0` }]);
        const publishedAt = Date.now();
        await waitFor(async () => (await appliedSeq(m.url)) >= seq, {
          what: `seq ${seq} visible`,
          timeoutMs: SLOW_POLL_MS + 3_000,
          intervalMs: 10,
        });
        times.push(Date.now() - publishedAt);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return times;
    };
    const before = await visibility(3);
    expect(percentileMs(before, 50)).toBeLessThan(1_000);

    // The partition: the hop goes silent, the primary restarts behind it (its side of every
    // connection is gone), and the hop heals without resetting anything the mirror holds.
    px.setMode({ kind: 'blackhole' });
    await primary.kill();
    primary = await startPrimary({ dataDir, listen, args: primaryArgs });
    px.setMode({ kind: 'pass' });
    // Idle timeout plus the reconnect backoff.
    await new Promise((resolve) => setTimeout(resolve, 4 * HEARTBEAT_MS + 1_500));
    const after = await visibility(5);
    console.log(
      `partition heal: publish -> visible ${before.join('/')} ms before, ${after.join('/')} ms after (poll every ${SLOW_POLL_MS} ms, heartbeat ${HEARTBEAT_MS} ms)`,
    );
    // Without the stream's idle timeout only the poll would find these: a median near SLOW_POLL_MS / 2.
    expect(percentileMs(after, 50)).toBeLessThan(1_000);
  }, 40_000);
});
