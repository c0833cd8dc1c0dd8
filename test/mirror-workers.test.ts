import { request, type IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  publishPackage,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { appliedSeq, metricValue } from './helpers/read-load.js';
import { startRewriteHop, type RewriteHop } from './helpers/rewrite-hop.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * A real mirror process with --workers 2 against one with --workers 1, both
 * syncing from one real primary (the two-worker one through a hop that can
 * hold its sync, so it must proxy). Requests go over fresh connections, so
 * the kernel spreads them over both threads' reusePort sockets.
 */
let primary: RunningPrimary | undefined;
let hop: RewriteHop | undefined;
let single: RunningMirror | undefined;
let pooled: RunningMirror | undefined;

interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request on its own connection (no agent), bytes as sent (no decoding). */
function rawRequest(url: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** The headers a client sees, without the per-connection and per-second ones. */
function comparable(headers: IncomingHttpHeaders): Record<string, unknown> {
  const { date: _date, connection: _connection, 'keep-alive': _keepAlive, ...rest } = headers;
  return rest;
}

async function workerRequests(url: string): Promise<number[]> {
  return Promise.all([0, 1].map((w) => metricValue(url, 'metasync_mirror_worker_requests_total', `worker="${w}",route="fast"`)));
}

beforeAll(async () => {
  primary = await startPrimary();
  hop = await startRewriteHop(primary.url);
  await publishPackage(primary.url, 'acme/one', [{ version: '1.0.0', description: 'first' }]);
  // Over 1 MiB as identity: not read whole by the hot path, so a worker forwards it and the main app streams it.
  const bigVersions = Array.from({ length: 40 }, (_, i) => ({
    version: `1.0.${i}`,
    description: `${i} ${'lorem ipsum dolor sit amet '.repeat(1_500)}`,
  }));
  const seq = await publishPackage(primary.url, 'acme/big', bigVersions);
  const args = ['--poll-interval-ms', '200'];
  single = await startMirror({ primaryUrl: primary.url, keyArg: primary.keyArg, args: [...args, '--workers', '1'] });
  pooled = await startMirror({ primaryUrl: hop.url, keyArg: primary.keyArg, args: [...args, '--workers', '2'] });
  for (const m of [single, pooled])
    await waitFor(async () => (await appliedSeq(m.url)) >= seq, { what: `mirror at seq ${seq}`, timeoutMs: 15_000 });
}, 60_000);

afterAll(async () => {
  await pooled?.stop();
  await single?.stop();
  await hop?.close();
  await primary?.stop();
  await removeTempDirs();
});

describe('mirror with --workers 2', () => {
  it('serves the same bytes and headers as one thread: encodings, HEAD, 304, the root file', async () => {
    const asks: { path: string; headers: Record<string, string>; method?: string }[] = [
      { path: '/p2/acme/one.json', headers: { 'accept-encoding': 'gzip, br' } },
      { path: '/p2/acme/one.json', headers: { 'accept-encoding': 'gzip' } },
      { path: '/p2/acme/one.json', headers: {} },
      { path: '/p2/acme/one.json', headers: { 'accept-encoding': 'br' }, method: 'HEAD' },
      { path: '/packages.json', headers: { 'accept-encoding': 'gzip' } },
      { path: '/p2/acme/big.json', headers: {} },
      { path: '/p2/acme/big.json', headers: {}, method: 'HEAD' },
    ];
    for (const ask of asks) {
      const [one, two] = await Promise.all([single!, pooled!].map((m) => rawRequest(`${m.url}${ask.path}`, ask)));
      expect(two!.status, ask.path).toBe(200);
      expect(two!.status).toBe(one!.status);
      expect(comparable(two!.headers)).toEqual(comparable(one!.headers));
      expect(two!.body.equals(one!.body)).toBe(true);
    }
    const forwardedBefore = await metricValue(pooled!.url, 'metasync_mirror_worker_requests_total', 'route="forwarded"');
    const big = await rawRequest(`${pooled!.url}/p2/acme/big.json`);
    expect(big.body.length).toBeGreaterThan(1024 * 1024);
    expect(big.body.length).toBe(Number(big.headers['content-length']));
    // The big answer and this scrape itself (metrics are the main thread's too).
    expect(await metricValue(pooled!.url, 'metasync_mirror_worker_requests_total', 'route="forwarded"')).toBe(forwardedBefore + 2);
    const etag = (await rawRequest(`${pooled!.url}/p2/acme/one.json`)).headers.etag!;
    const [one, two] = await Promise.all(
      [single!, pooled!].map((m) => rawRequest(`${m.url}/p2/acme/one.json`, { headers: { 'if-none-match': etag } })),
    );
    expect(two!.status).toBe(304);
    expect(comparable(two!.headers)).toEqual(comparable(one!.headers));
  });

  it('answers on both threads, each counted on /metrics', async () => {
    const before = await workerRequests(pooled!.url);
    const storeBefore = await metricValue(pooled!.url, 'metasync_mirror_responses_total', 'source="store",status="200"');
    for (let i = 0; i < 48; i++) expect((await rawRequest(`${pooled!.url}/p2/acme/one.json`)).status).toBe(200);
    const after = await workerRequests(pooled!.url);
    expect(after[0]! - before[0]!).toBeGreaterThan(0);
    expect(after[1]! - before[1]!).toBeGreaterThan(0);
    expect(after[0]! + after[1]! - before[0]! - before[1]!).toBe(48);
    // The workers' answers also reach the mirror-wide counters (published every 250 ms).
    await waitFor(
      async () => (await metricValue(pooled!.url, 'metasync_mirror_responses_total', 'source="store",status="200"')) >= storeBefore + 48,
      { what: 'worker answers in metasync_mirror_responses_total', timeoutMs: 5_000 },
    );
  });

  it('shows a publish on every thread: once one answer has the new generation, none has the old', async () => {
    const seq = await publishPackage(primary!.url, 'acme/one', [{ version: '1.0.0' }, { version: '2.0.0', description: 'second' }]);
    await waitFor(
      async () => {
        const answer = await rawRequest(`${pooled!.url}/p2/acme/one.json`);
        return Number(answer.headers['x-metasync-seq']) >= seq;
      },
      { what: `an answer at seq ${seq}`, timeoutMs: 15_000 },
    );
    const before = await workerRequests(pooled!.url);
    for (let i = 0; i < 40; i++) {
      const answer = await rawRequest(`${pooled!.url}/p2/acme/one.json`);
      expect(Number(answer.headers['x-metasync-seq'])).toBeGreaterThanOrEqual(seq);
      expect(answer.body.toString()).toContain('2.0.0');
    }
    const after = await workerRequests(pooled!.url);
    expect(Math.min(after[0]! - before[0]!, after[1]! - before[1]!)).toBeGreaterThan(0);
  });

  it('proxies a path it lacks and answers /health/fresh through the threads (forwarded to the main thread)', async () => {
    const forwardedBefore = await metricValue(pooled!.url, 'metasync_mirror_worker_requests_total', 'route="forwarded"');
    const proxiedBefore = await metricValue(pooled!.url, 'metasync_mirror_proxied_responses_total');
    hop!.setSync('hold');
    try {
      await publishPackage(primary!.url, 'acme/fresh', [{ version: '3.0.0', description: 'only on the primary' }]);
      const answer = await rawRequest(`${pooled!.url}/p2/acme/fresh.json`);
      expect(answer.status).toBe(200);
      expect(answer.body.toString()).toContain('only on the primary');
      expect(await metricValue(pooled!.url, 'metasync_mirror_proxied_responses_total')).toBeGreaterThan(proxiedBefore);
      const health = await rawRequest(`${pooled!.url}/health/fresh`);
      expect(health.status).toBe(200);
      expect(health.headers['cache-control']).toBe('no-store');
      const absent = await rawRequest(`${pooled!.url}/p2/acme/never-published.json`);
      expect(absent.status).toBe(404);
      expect(absent.headers['cache-control']).toBe('no-store');
    } finally {
      hop!.setSync('pass');
    }
    expect(await metricValue(pooled!.url, 'metasync_mirror_worker_requests_total', 'route="forwarded"')).toBeGreaterThan(
      forwardedBefore + 3,
    );
  });

  it('leaves nothing behind when SIGKILLed, restarts into its applied generation, and stops cleanly on SIGTERM', async () => {
    const port = Number(new URL(pooled!.url).port);
    const pid = pooled!.child.pid!;
    const seq = await appliedSeq(pooled!.url);
    await pooled!.kill();
    expect(() => process.kill(pid, 0)).toThrow();
    await expectPortFree(port);
    pooled = await startMirror({ primaryUrl: hop!.url, keyArg: primary!.keyArg, dataDir: pooled!.dataDir, args: ['--workers', '2'] });
    const answer = await rawRequest(`${pooled.url}/p2/acme/one.json`);
    expect(answer.status).toBe(200);
    expect(Number(answer.headers['x-metasync-seq'])).toBeGreaterThanOrEqual(seq);
    expect(answer.body.toString()).toContain('2.0.0');
    const restartedPort = Number(new URL(pooled.url).port);
    await pooled.stop(15_000);
    expect(await pooled.exited).toEqual({ code: 0, signal: null });
    await expectPortFree(restartedPort);
  });
});

/** Binds the port without reusePort: a listener still holding it would make this fail with EADDRINUSE. */
async function expectPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port }, () => server.close(() => resolve()));
  });
}
