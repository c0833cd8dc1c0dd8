import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateCorpus, renderCorpusPackage, writeCorpusTree } from './helpers/corpus.js';
import {
  measureLatency,
  openTracked,
  startSlowloris,
  type LatencySample,
  type Slowloris,
  type TrackedSocket,
} from './helpers/hostile-clients.js';
import {
  makeTempDir,
  PUBLISH_TOKEN,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { readProcMemory } from './helpers/proc-stats.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * Hostile clients against the real, built daemons over loopback: slowloris,
 * thousands of idle connections, huge headers, a trickled publish body and a
 * connection flood. The limits are shortened by flag so the test runs in
 * seconds; each check would fail with Node's defaults (60 s headers timeout
 * checked every 30 s, no request timeout in fastify, unlimited connections).
 */
const MIRROR_HEADERS_TIMEOUT_MS = 4_000;
const MIRROR_KEEP_ALIVE_MS = 3_000;
const PRIMARY_REQUEST_TIMEOUT_MS = 2_500;
const PRIMARY_MAX_CONNECTIONS = 128;
const PRIMARY_MAX_HEADER_BYTES = 8_192;
const PRIMARY_SOCKET_TIMEOUT_MS = 2_000;
/** Node checks the timeouts every min(1 s, timeout / 4) and adds ~1 s to keep-alive; scheduling on a busy box adds more. */
const CLOSE_SLACK_MS = 3_000;

let primary: RunningPrimary;
let mirror: RunningMirror;
let p2Paths: string[];
let largest: { path: string; bytes: number };
let baseline: LatencySample;
const openSockets: TrackedSocket[] = [];
let slowloris: Slowloris | undefined;
const measured: Record<string, unknown> = {};

/**
 * The bound a p99 under attack must meet: 3x the baseline p99, or 100 ms, whichever is larger.
 * Quiet runs measure 3-10 ms under attack; with another test file busy on the other core of a
 * 2-core box, a 1 s sample's p99 has reached 57 ms with no attack effect (its baseline right
 * after was 5 ms). A mirror actually stalled by these attacks answers in seconds or not at all.
 */
const latencyBoundMs = (baselineP99Ms: number): number => Math.max(3 * baselineP99Ms, 100);
const probe = (durationMs: number): Promise<LatencySample> =>
  measureLatency({ baseUrl: mirror.url, paths: p2Paths, workers: 12, durationMs, maxRequests: 200_000 });

/**
 * The p99 bound for a sample taken under attack. Other work on the machine (the
 * other test fork, other processes) can slow everything for a while; when the
 * sample misses the bound, a second baseline taken right after the attack
 * (same machine load, no attack) may raise it. An attack that really slows the
 * mirror still fails: the baseline after it is fast again.
 */
async function latencyBound(underAttack: LatencySample): Promise<{ boundMs: number; baselineAfter?: LatencySample }> {
  const boundMs = latencyBoundMs(baseline.p99Ms);
  if (underAttack.p99Ms <= boundMs) return { boundMs };
  const baselineAfter = await probe(2_000);
  return { boundMs: Math.max(boundMs, latencyBoundMs(baselineAfter.p99Ms)), baselineAfter };
}

beforeAll(async () => {
  const source = await makeTempDir('hostile-source-');
  const tree = await writeCorpusTree(source, generateCorpus({ packages: 200, seed: 5 }));
  p2Paths = tree.p2Paths.map((path) => `/${path}`);
  // One long-lived package (~1 MB p2 file), for a reader that stops reading.
  const [big] = renderCorpusPackage({ name: 'big/history', tagged: 2_500, dev: 0, seed: 3 });
  await mkdir(join(source, 'p2', 'big'), { recursive: true });
  await writeFile(join(source, big!.path), big!.content);
  largest = { path: `/${big!.path}`, bytes: big!.content.length };
  primary = await startPrimary({
    args: [
      '--source',
      source,
      '--http-request-timeout-ms',
      String(PRIMARY_REQUEST_TIMEOUT_MS),
      '--http-headers-timeout-ms',
      String(PRIMARY_REQUEST_TIMEOUT_MS),
      '--http-max-connections',
      String(PRIMARY_MAX_CONNECTIONS),
      '--http-max-header-bytes',
      String(PRIMARY_MAX_HEADER_BYTES),
      '--http-socket-timeout-ms',
      String(PRIMARY_SOCKET_TIMEOUT_MS),
      // The mirror's event stream stays busier than the socket timeout.
      '--heartbeat-ms',
      '500',
    ],
  });
  mirror = await startMirror({
    primaryUrl: primary.url,
    keyArg: primary.keyArg,
    args: [
      '--http-headers-timeout-ms',
      String(MIRROR_HEADERS_TIMEOUT_MS),
      '--http-keep-alive-timeout-ms',
      String(MIRROR_KEEP_ALIVE_MS),
      '--http-request-timeout-ms',
      '6000',
    ],
  });
  const last = p2Paths[p2Paths.length - 1]!;
  await waitFor(async () => (await fetch(`${mirror.url}${last}`, { signal: AbortSignal.timeout(2_000) })).status === 200, {
    what: `mirror serving ${last}`,
    timeoutMs: 15_000,
  });
  await probe(1_500); // warm the hot cache and the JIT, let the mirror's start-up work settle
  baseline = await probe(2_000);
  measured.baseline = baseline;
}, 60_000);

afterEach(() => {
  slowloris?.close();
  slowloris = undefined;
  for (const tracked of openSockets.splice(0)) tracked.close();
});

afterAll(async () => {
  await mirror?.stop();
  await primary?.stop();
  await removeTempDirs();
  // The figures the report quotes; printed, not asserted beyond the tests' bounds.
  process.stdout.write(`hostile-clients measurements: ${JSON.stringify(measured)}\n`);
});

describe('hostile clients against the built mirror and primary', () => {
  it('closes slowloris connections at the headers timeout while normal clients keep their latency', async () => {
    expect(baseline.failures).toBe(0);
    slowloris = await startSlowloris({ baseUrl: mirror.url, connections: 200, trickleMs: 500, maxOpens: 2_000, path: p2Paths[0]! });
    // Longer than the headers timeout: the first wave is cut and replaced while the probe runs.
    const underAttack = await probe(MIRROR_HEADERS_TIMEOUT_MS + 1_500);
    slowloris.stopAttacking();
    const sockets = slowloris.sockets;
    await waitFor(() => sockets.every((s) => s.closedByServerAtMs !== undefined), {
      what: 'the server closing every slowloris socket',
      timeoutMs: MIRROR_HEADERS_TIMEOUT_MS + CLOSE_SLACK_MS + 1_000,
      intervalMs: 50,
    });
    const lifetimes = sockets.map((s) => s.closedByServerAtMs! - s.openedAtMs);
    const bound = await latencyBound(underAttack);
    measured.slowloris = {
      sockets: sockets.length,
      maxLifetimeMs: Math.round(Math.max(...lifetimes)),
      minLifetimeMs: Math.round(Math.min(...lifetimes)),
      underAttack,
      ...bound,
    };
    expect(sockets.length).toBeGreaterThanOrEqual(200);
    expect(Math.max(...lifetimes)).toBeLessThan(MIRROR_HEADERS_TIMEOUT_MS + CLOSE_SLACK_MS);
    expect(Math.min(...lifetimes)).toBeGreaterThan(MIRROR_HEADERS_TIMEOUT_MS / 2);
    expect(sockets.filter((s) => !s.received.startsWith('HTTP/1.1 408 '))).toEqual([]);
    expect(underAttack.failures, underAttack.failureSamples.join('; ')).toBe(0);
    expect(underAttack.p99Ms).toBeLessThanOrEqual(bound.boundMs);
  });

  it('keeps serving with 2,500 idle connections open, within a memory bound, and closes them when idle', async () => {
    const before = await readProcMemory(mirror.child.pid!);
    const count = 2_500;
    const request = `GET ${p2Paths[1]} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
    const openingStartedMs = performance.now();
    // Half never send a byte (the headers timeout closes them), half finish one request and idle (keep-alive closes them).
    for (let i = 0; i < count; i += 250) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(250, count - i) }, (_, j) => openTracked(mirror.url, (i + j) % 2 === 0 ? undefined : request)),
      );
      openSockets.push(...batch);
    }
    const openedAtMs = performance.now();
    const during = await readProcMemory(mirror.child.pid!);
    const openAtProbeStart = openSockets.filter((s) => s.closedByServerAtMs === undefined).length;
    const underLoad = await probe(1_000);
    const stillOpenAfterProbe = openSockets.filter((s) => s.closedByServerAtMs === undefined).length;
    await waitFor(() => openSockets.every((s) => s.closedByServerAtMs !== undefined), {
      what: 'the server closing every idle connection',
      timeoutMs: MIRROR_KEEP_ALIVE_MS + CLOSE_SLACK_MS + 2_000,
      intervalMs: 50,
    });
    const allClosedAfterMs = performance.now() - openedAtMs;
    const bound = await latencyBound(underLoad);
    const growthBytes = during.rssBytes - before.rssBytes;
    measured.idle = {
      connections: count,
      openingMs: Math.round(openedAtMs - openingStartedMs),
      openAtProbeStart,
      stillOpenAfterProbe,
      allClosedAfterMs: Math.round(allClosedAfterMs),
      rssBeforeMb: mb(before.rssBytes),
      rssDuringMb: mb(during.rssBytes),
      underLoad,
      ...bound,
    };
    // The probe started with (nearly) all of them open: on a loaded box opening 2,500 can take
    // seconds, and the first silent ones may already meet the headers timeout.
    expect(openAtProbeStart).toBeGreaterThanOrEqual(2_000);
    expect(openSockets.filter((s, i) => i % 2 === 1 && !s.received.startsWith('HTTP/1.1 200 '))).toEqual([]);
    expect(underLoad.failures, underLoad.failureSamples.join('; ')).toBe(0);
    expect(underLoad.p99Ms).toBeLessThanOrEqual(bound.boundMs);
    // ~3 KiB per idle socket measured (10,000: +31 MB); 64 MiB is far above what 2,500 cost, far below unbounded growth.
    expect(growthBytes).toBeLessThan(64 * 1024 * 1024);
    const after = await probe(500);
    expect(after.failures).toBe(0);
  });

  it('answers a 64 KiB header with 431 and keeps serving; a 12 KiB one is within the default limit', async () => {
    const huge = await openTracked(mirror.url, `GET ${p2Paths[2]} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    openSockets.push(huge);
    await waitFor(() => huge.closedByServerAtMs !== undefined, { what: 'the mirror closing the huge-header connection', timeoutMs: 5_000 });
    expect(huge.received).toMatch(/^HTTP\/1\.1 431 /);
    const fine = await fetch(`${mirror.url}${p2Paths[2]}`, {
      headers: { 'x-padding': 'b'.repeat(12 * 1024) },
      signal: AbortSignal.timeout(5_000),
    });
    expect(fine.status).toBe(200);
    await fine.arrayBuffer();
    // The primary was started with --http-max-header-bytes 8192: the same 12 KiB header is refused there.
    const refused = await openTracked(
      primary.url,
      `GET /sync/v1/state HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${'b'.repeat(12 * 1024)}\r\n\r\n`,
    );
    openSockets.push(refused);
    await waitFor(() => refused.closedByServerAtMs !== undefined, {
      what: 'the primary closing the 12 KiB-header connection',
      timeoutMs: 5_000,
    });
    expect(refused.received).toMatch(/^HTTP\/1\.1 431 /);
    expect((await fetch(`${mirror.url}/healthz`, { signal: AbortSignal.timeout(5_000) })).status).toBe(200);
    expect((await fetch(`${primary.url}/sync/v1/state`, { signal: AbortSignal.timeout(5_000) })).status).toBe(200);
  });

  it('destroys a connection that pipelines requests without reading the answers, before their responses pile up', async () => {
    const requests = 2_000;
    const before = await readProcMemory(primary.child.pid!);
    const flooder = await openTracked(primary.url, `GET ${largest.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`.repeat(requests));
    openSockets.push(flooder);
    await waitFor(() => flooder.closedByServerAtMs !== undefined, {
      what: 'the primary destroying the pipelining connection',
      timeoutMs: 5_000,
      intervalMs: 20,
    });
    const after = await readProcMemory(primary.child.pid!);
    const answered = flooder.received.split('HTTP/1.1 200 ').length - 1;
    measured.pipelining = {
      requests,
      fileBytes: largest.bytes,
      receivedMb: mb(flooder.receivedBytes),
      rssBeforeMb: mb(before.rssBytes),
      rssAfterMb: mb(after.rssBytes),
      peakMb: mb(after.peakRssBytes),
    };
    // Without the limit the primary would queue 2,000 x ~1 MB responses for a client that reads none.
    expect(flooder.receivedBytes).toBeLessThan(20 * largest.bytes);
    expect(answered).toBeLessThan(20);
    expect(after.rssBytes - before.rssBytes).toBeLessThan(64 * 1024 * 1024);
    expect((await fetch(`${primary.url}/sync/v1/state`, { signal: AbortSignal.timeout(5_000) })).status).toBe(200);
  });

  it('closes a connection whose client stopped reading its responses at the socket timeout', async () => {
    // Within the pipelining limit, and more bytes than the loopback socket buffers take in (a few MB without reads).
    const requests = 12;
    const reader = await openTracked(primary.url);
    openSockets.push(reader);
    reader.socket.pause();
    reader.socket.write(`GET ${largest.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`.repeat(requests), 'latin1');
    // Node arms the timer again once the last response it could write has finished: it fires within two timeouts.
    await new Promise((resolve) => setTimeout(resolve, 2 * PRIMARY_SOCKET_TIMEOUT_MS + 1_000));
    // A paused socket notices nothing: read what was buffered, then the end the server sent (or keep-alive goes on).
    reader.socket.resume();
    await waitFor(() => reader.closedByServerAtMs !== undefined, {
      what: 'the stalled reader finding its connection closed by the primary',
      timeoutMs: 3_000,
      intervalMs: 50,
    });
    const askedBytes = requests * largest.bytes;
    measured.slowReader = { requests, fileBytes: largest.bytes, askedMb: mb(askedBytes), receivedMb: mb(reader.receivedBytes) };
    expect(reader.received).toMatch(/^HTTP\/1\.1 200 /);
    expect(reader.receivedBytes).toBeLessThan(askedBytes);
    expect((await fetch(`${primary.url}/sync/v1/state`, { signal: AbortSignal.timeout(5_000) })).status).toBe(200);
  });

  it('answers a publish declaring a body over --max-body-bytes with 413 at once, without reading it', async () => {
    const head = [
      'PUT /api/v1/packages/acme/huge HTTP/1.1',
      'Host: 127.0.0.1',
      `Authorization: Bearer ${PUBLISH_TOKEN}`,
      'Content-Type: application/json',
      `Content-Length: ${100 * 1024 * 1024}`,
      '',
      '',
    ].join('\r\n');
    const sender = await openTracked(primary.url, head);
    openSockets.push(sender);
    await waitFor(() => sender.received.includes('\r\n\r\n'), {
      what: 'the primary answering the oversize declaration',
      timeoutMs: 2_000,
      intervalMs: 20,
    });
    expect(sender.received).toMatch(/^HTTP\/1\.1 413 /);
    expect(sender.received).toContain('METASYNC_ERR_REQUEST_TOO_LARGE');
  });

  it("cuts a publish body trickled byte by byte at the primary's request timeout", async () => {
    const head = [
      'PUT /api/v1/packages/acme/slow HTTP/1.1',
      'Host: 127.0.0.1',
      `Authorization: Bearer ${PUBLISH_TOKEN}`,
      'Content-Type: application/json',
      'Content-Length: 100000',
      '',
      '{',
    ].join('\r\n');
    const trickler = await openTracked(primary.url, head);
    openSockets.push(trickler);
    const timer = setInterval(() => {
      if (trickler.socket.writable) trickler.socket.write(' ');
    }, 100);
    try {
      await waitFor(() => trickler.closedByServerAtMs !== undefined, {
        what: 'the primary cutting the trickled body',
        timeoutMs: PRIMARY_REQUEST_TIMEOUT_MS + CLOSE_SLACK_MS + 1_000,
        intervalMs: 50,
      });
    } finally {
      clearInterval(timer);
    }
    const lifetimeMs = trickler.closedByServerAtMs! - trickler.openedAtMs;
    measured.trickledBody = { lifetimeMs: Math.round(lifetimeMs), answer: trickler.received.split('\r\n')[0] };
    expect(trickler.received).toMatch(/^HTTP\/1\.1 408 /);
    expect(lifetimeMs).toBeGreaterThan(PRIMARY_REQUEST_TIMEOUT_MS / 2);
    expect(lifetimeMs).toBeLessThan(PRIMARY_REQUEST_TIMEOUT_MS + CLOSE_SLACK_MS);
    expect((await fetch(`${primary.url}/sync/v1/state`, { signal: AbortSignal.timeout(5_000) })).status).toBe(200);
  });

  it('refuses connections beyond --http-max-connections at once, and serves again when they go', async () => {
    const flood = 2 * PRIMARY_MAX_CONNECTIONS;
    const started = performance.now();
    for (let i = 0; i < flood; i += 32) {
      openSockets.push(...(await Promise.all(Array.from({ length: 32 }, () => openTracked(primary.url)))));
    }
    // Refused ones are closed at accept, with no bytes; the rest wait for the headers timeout.
    await waitFor(() => openSockets.filter((s) => s.closedByServerAtMs !== undefined).length >= flood - PRIMARY_MAX_CONNECTIONS, {
      what: 'refused connections',
      timeoutMs: 2_000,
    });
    const refused = openSockets.filter((s) => s.closedByServerAtMs !== undefined && s.closedByServerAtMs - started < 1_500);
    measured.maxConnections = { flood, refused: refused.length };
    // The mirror's own pooled connections count too, so at least (flood - limit) are refused.
    expect(refused.length).toBeGreaterThanOrEqual(flood - PRIMARY_MAX_CONNECTIONS);
    expect(refused.every((s) => s.received === '')).toBe(true);
    await waitFor(() => primary.logs.some((l) => l.msg === 'connection refused: max connections reached'), {
      what: "the primary's refusal warning",
      timeoutMs: 2_000,
    });
    for (const tracked of openSockets.splice(0)) tracked.close();
    await waitFor(async () => (await fetch(`${primary.url}/sync/v1/state`, { signal: AbortSignal.timeout(1_000) })).status === 200, {
      what: 'the primary serving again',
      timeoutMs: 5_000,
    });
  });
});

function mb(bytes: number): number {
  return Math.round(bytes / 1024 / 102.4) / 10;
}
