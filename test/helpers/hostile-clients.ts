import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { percentileMs } from './read-load.js';

/**
 * Raw-socket attackers and a Composer-like latency probe for the hostile-client
 * tests (test/hostile-clients.test.ts). Every socket opened here is tracked and
 * destroyed by `close()`; every loop is bounded in count and time.
 */

export interface TrackedSocket {
  socket: Socket;
  openedAtMs: number;
  /** When the server closed it (undefined: still open, or closed by us). */
  closedByServerAtMs?: number;
  /** First bytes (up to ~1 KiB) the server sent, latin1 (e.g. `HTTP/1.1 408 ...`). */
  received: string;
  receivedBytes: number;
  /** Destroys it from our side (not counted as closed by the server). */
  close(): void;
}

function hostPort(baseUrl: string): { host: string; port: number } {
  const url = new URL(baseUrl);
  return { host: url.hostname, port: Number(url.port) };
}

/** Opens one raw connection, sends `firstBytes` if given; resolves once connected. */
export function openTracked(baseUrl: string, firstBytes?: string): Promise<TrackedSocket> {
  const { host, port } = hostPort(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    let connected = false;
    let closingByUs = false;
    const tracked: TrackedSocket = {
      socket,
      openedAtMs: performance.now(),
      received: '',
      receivedBytes: 0,
      close() {
        if (!socket.destroyed && tracked.closedByServerAtMs === undefined) closingByUs = true;
        socket.destroy();
      },
    };
    socket.on('data', (chunk: Buffer) => {
      tracked.receivedBytes += chunk.length;
      if (tracked.received.length < 1024) tracked.received += chunk.toString('latin1');
    });
    socket.on('end', () => socket.end());
    socket.on('close', () => {
      if (connected && !closingByUs) tracked.closedByServerAtMs = performance.now();
    });
    socket.on('error', (err) => {
      if (!connected) reject(err);
    });
    socket.once('connect', () => {
      connected = true;
      tracked.openedAtMs = performance.now();
      if (firstBytes !== undefined) socket.write(firstBytes, 'latin1');
      resolve(tracked);
    });
  });
}

export interface Slowloris {
  sockets: TrackedSocket[];
  /** Stops opening replacements and trickling; open sockets stay open (the server must close them). */
  stopAttacking(): void;
  /** Destroys every socket still open. */
  close(): void;
}

/**
 * Keeps `connections` sockets sending an unfinished request head, one more header
 * byte every `trickleMs` (each socket on its own phase), and opens a replacement
 * whenever the server closes one, up to `maxOpens` sockets in all.
 */
export async function startSlowloris(options: {
  baseUrl: string;
  connections: number;
  trickleMs: number;
  maxOpens: number;
  path: string;
}): Promise<Slowloris> {
  const sockets: TrackedSocket[] = [];
  const head = `GET ${options.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: `;
  let attacking = true;
  let closed = false;
  let opens = 0;
  const openOne = async (): Promise<void> => {
    if (!attacking || opens >= options.maxOpens) return;
    opens += 1;
    const tracked = await openTracked(options.baseUrl, head);
    // Pushed even after stopAttacking/close (a connect in flight), so close() still finds it.
    sockets.push(tracked);
    if (closed) tracked.close();
    tracked.socket.on('close', () => {
      if (tracked.closedByServerAtMs !== undefined) void openOne().catch(() => undefined);
    });
  };
  await Promise.all(Array.from({ length: options.connections }, openOne));
  // One timer for all: each tick trickles one byte to a slice of the sockets, so every
  // socket gets a byte every `trickleMs` without 200 timers.
  const slices = 10;
  let tick = 0;
  const timer = setInterval(() => {
    if (!attacking) return;
    tick += 1;
    for (let i = tick % slices; i < sockets.length; i += slices) {
      const { socket, closedByServerAtMs } = sockets[i]!;
      if (closedByServerAtMs === undefined && socket.writable) socket.write('a');
    }
  }, options.trickleMs / slices);
  return {
    sockets,
    stopAttacking() {
      attacking = false;
      clearInterval(timer);
    },
    close() {
      closed = true;
      attacking = false;
      clearInterval(timer);
      for (const tracked of sockets) tracked.close();
    },
  };
}

export interface LatencySample {
  requests: number;
  failures: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  failureSamples: string[];
}

/**
 * A Composer-like reader: `workers` keep-alive connections, each GETting random
 * paths (gzip accepted, bodies read) back to back for `durationMs`, at most
 * `maxRequests` in all. A fresh agent per call, destroyed at the end.
 */
export async function measureLatency(options: {
  baseUrl: string;
  paths: readonly string[];
  workers: number;
  durationMs: number;
  maxRequests: number;
}): Promise<LatencySample> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.workers });
  const { host, port } = hostPort(options.baseUrl);
  const latencies: number[] = [];
  const failureSamples: string[] = [];
  let failures = 0;
  let started = 0;
  let seed = 7;
  const nextPath = (): string => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return options.paths[seed % options.paths.length]!;
  };
  const getOnce = (path: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = request({ host, port, path, agent, headers: { 'accept-encoding': 'gzip, br' }, timeout: 5_000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out after 5000 ms`)));
      req.on('error', reject);
      req.end();
    });
  const deadline = performance.now() + options.durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline && started < options.maxRequests) {
      started += 1;
      const path = nextPath();
      const t0 = performance.now();
      try {
        const status = await getOnce(path);
        if (status === 200) latencies.push(performance.now() - t0);
        else {
          failures += 1;
          if (failureSamples.length < 5) failureSamples.push(`${path}: status ${status}`);
        }
      } catch (err) {
        failures += 1;
        if (failureSamples.length < 5) failureSamples.push(`${path}: ${(err as Error).message}`);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.workers }, worker));
  } finally {
    agent.destroy();
  }
  const round = (ms: number): number => Math.round(ms * 100) / 100;
  return {
    requests: latencies.length + failures,
    failures,
    p50Ms: round(percentileMs(latencies, 50)),
    p99Ms: round(percentileMs(latencies, 99)),
    maxMs: round(latencies.reduce((max, ms) => Math.max(max, ms), 0)),
    failureSamples,
  };
}
