import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { Agent } from 'node:http';
import { startDaemon, type Daemon } from '../../test/helpers/daemon.js';
import { readChildRssBytes, readProcMemory } from '../../test/helpers/proc-stats.js';
import { getJson, httpRequest, readMetric, type HttpResponse } from './http.js';
import { elapsedMs, nowNs } from './stats.js';

/** Matches packages/shared/src/protocol/routes.ts; the bench talks HTTP only, as a client would. */
export const STATE_PATH = '/sync/v1/state';
export const EVENTS_PATH = '/sync/v1/events';
export const MIRRORS_PATH = '/sync/v1/mirrors';
export const MIRROR_APPLIED_SEQ_METRIC = 'metasync_mirror_applied_seq';

export interface PrimaryState {
  seq: number;
  time: number;
}

export interface StartPrimaryOptions {
  sourceDir: string;
  dataDir: string;
  publishToken: string;
  readyTimeoutMs?: number;
  /** The malloc it runs on, as for mirrors (its systemd unit preloads jemalloc too). */
  malloc: BenchMalloc;
}

export async function startPrimary(options: StartPrimaryOptions): Promise<Daemon> {
  return await startDaemon({
    bin: 'primary',
    args: ['--source', options.sourceDir, '--data', options.dataDir, '--listen', '127.0.0.1:0'],
    env: { METASYNC_PUBLISH_TOKEN: options.publishToken, ...mallocEnv(options.malloc) },
    readyTimeoutMs: options.readyTimeoutMs ?? 120_000,
  });
}

export interface StartMirrorOptions {
  primaryUrl: string;
  dataDir: string;
  hotCacheMib: number;
  /** An admin token of the primary: the mirror is enrolled with it (its acks feed the primary's lag figures). */
  publishToken: string;
  mirrorId: string;
  readyTimeoutMs?: number;
  /** More mirror flags (e.g. the dist options). */
  extraArgs?: string[];
  /** The malloc the mirror runs on: jemalloc (preloaded, as the systemd unit does; when installed) or glibc's. */
  malloc: BenchMalloc;
}

export type BenchMalloc = 'jemalloc' | 'glibc';

/** Where Debian's libjemalloc2 puts the library the systemd units preload. */
const JEMALLOC_PATHS = ['/usr/lib/x86_64-linux-gnu/libjemalloc.so.2', '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2'];

/** The environment that gives a daemon `malloc` (nothing when jemalloc is asked for but not installed: it runs on glibc, and says so). */
export function mallocEnv(malloc: BenchMalloc): Record<string, string> {
  const library = malloc === 'jemalloc' ? JEMALLOC_PATHS.find((path) => existsSync(path)) : undefined;
  // As the units run it: the background thread purges freed pages of an idle daemon (docs/operations.md, "Memory").
  return library === undefined ? {} : { LD_PRELOAD: library, MALLOC_CONF: 'background_thread:true' };
}

/** Starts a mirror pinned to the primary's active key and enrolled under `mirrorId`, as `metasync mirror up` sets one up. */
export async function startMirror(options: StartMirrorOptions): Promise<Daemon> {
  const state = await getJson<{ keys: { keyId: string; publicKey: string; active: boolean }[] }>(`${options.primaryUrl}${STATE_PATH}`);
  const key = state.keys.find((k) => k.active);
  if (key === undefined) throw new Error(`${options.primaryUrl} lists no active key`);
  const enrolled = await fetch(`${options.primaryUrl}/admin/mirrors/${options.mirrorId}/credential`, {
    method: 'POST',
    headers: { authorization: `Bearer ${options.publishToken}` },
  });
  if (!enrolled.ok) throw new Error(`enrolling ${options.mirrorId} answered ${enrolled.status}: ${await enrolled.text()}`);
  const { credential } = (await enrolled.json()) as { credential: string };
  return await startDaemon({
    bin: 'mirror',
    args: [
      '--primary',
      options.primaryUrl,
      '--data',
      options.dataDir,
      '--listen',
      '127.0.0.1:0',
      '--hot-cache-bytes',
      String(options.hotCacheMib * 2 ** 20),
      '--mirror-id',
      options.mirrorId,
      '--primary-key',
      `${key.keyId}:${key.publicKey}`,
      ...(options.extraArgs ?? []),
    ],
    env: { METASYNC_MIRROR_CREDENTIAL: credential, ...mallocEnv(options.malloc) },
    readyTimeoutMs: options.readyTimeoutMs ?? 120_000,
  });
}

export async function readPrimaryState(primaryUrl: string, agent?: Agent): Promise<PrimaryState> {
  return await getJson<PrimaryState>(`${primaryUrl}${STATE_PATH}`, agent);
}

/** Waits until the primary's start-up reconcile of --source has committed (a restart listens before it); its figures. */
export async function waitForStartupReconcile(
  primaryUrl: string,
  timeoutMs: number,
): Promise<{ durationMs: number; files: number; filesRead: number }> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; Date.now() < deadline && attempt < 1_000_000; attempt++) {
    const data = await getJson<{ source: { startup?: { finished?: { durationMs: number; files: number; filesRead: number } } } | null }>(
      `${primaryUrl}/status/data.json`,
    );
    const finished = data.source?.startup?.finished;
    if (finished !== undefined) return finished;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${primaryUrl} did not finish its start-up reconcile within ${timeoutMs} ms`);
}

/**
 * Waits until the primary has committed every path of a tree it ingests: its
 * head is above 0 and has not moved for `quietMs`, and the primary serves
 * every one of ~200 paths sampled evenly from the tree (including the first
 * and last). Returns the head; `time` is the commit time of the last ingest
 * generation.
 */
export async function waitForIngest(options: {
  primaryUrl: string;
  paths: readonly string[];
  timeoutMs: number;
  quietMs?: number;
}): Promise<PrimaryState> {
  const quietMs = options.quietMs ?? 1000;
  const deadline = Date.now() + options.timeoutMs;
  const step = Math.max(1, Math.floor(options.paths.length / 200));
  const sample = options.paths.filter((_, index) => index % step === 0 || index === options.paths.length - 1);
  let last: PrimaryState = { seq: -1, time: 0 };
  let stableSince = Date.now();
  let checkedSeq = -1;
  for (let attempt = 0; Date.now() < deadline && attempt < 1_000_000; attempt++) {
    const state = await readPrimaryState(options.primaryUrl);
    if (state.seq !== last.seq) {
      last = state;
      stableSince = Date.now();
    } else if (state.seq > 0 && state.seq !== checkedSeq && Date.now() - stableSince >= quietMs) {
      checkedSeq = state.seq;
      if (await servesAll(options.primaryUrl, sample)) return last;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(
    `primary ${options.primaryUrl} did not ingest ${options.paths.length} paths within ${options.timeoutMs} ms (head seq ${last.seq})`,
  );
}

async function servesAll(baseUrl: string, paths: readonly string[]): Promise<boolean> {
  for (const path of paths) {
    const response = await httpRequest(`${baseUrl}/${path}`, { method: 'HEAD' });
    if (response.status !== 200) return false;
  }
  return true;
}

/** Waits until a mirror reports (in /metrics) that it serves generation `seq` or later. */
/** Log lines a mirror writes once a generation is served (packages/mirror/src/sync/puller.ts). */
const APPLIED_LOG_MESSAGES = new Set(['generation applied', 'snapshot applied']);
/** With the mirror's log lines to read, /metrics is only a fallback, read this often. */
const METRICS_FALLBACK_MS = 1_000;

/**
 * Resolves with the mirror's applied seq once it is at least `seq`. With `logs` (the daemon's parsed log
 * lines, appended as they are read), a line saying a generation was applied is the signal: a /metrics render
 * costs the mirror ~2 ms, and read every 50 ms it took about 4% of a bootstrap's CPU (100k paths, profiled).
 */
export async function waitForMirrorSeq(options: {
  mirrorUrl: string;
  seq: number;
  timeoutMs: number;
  intervalMs?: number;
  agent?: Agent;
  logs?: readonly Record<string, unknown>[];
}): Promise<number> {
  const deadline = Date.now() + options.timeoutMs;
  let applied: number | undefined;
  let logsRead = 0;
  // With logs, the first /metrics read waits a fallback interval.
  let metricsReadMs = options.logs === undefined ? 0 : Date.now();
  for (let attempt = 0; Date.now() < deadline && attempt < 10_000_000; attempt++) {
    if (options.logs !== undefined) {
      for (; logsRead < options.logs.length; logsRead++) {
        const line = options.logs[logsRead]!;
        if (APPLIED_LOG_MESSAGES.has(String(line.msg)) && typeof line.seq === 'number' && line.seq >= options.seq) return line.seq;
      }
    }
    if (options.logs === undefined || Date.now() - metricsReadMs >= METRICS_FALLBACK_MS) {
      metricsReadMs = Date.now();
      applied = await readMetric(options.mirrorUrl, MIRROR_APPLIED_SEQ_METRIC, options.agent);
      if (applied !== undefined && applied >= options.seq) return applied;
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
  throw new Error(`mirror ${options.mirrorUrl} did not reach seq ${options.seq} within ${options.timeoutMs} ms (applied ${applied})`);
}

export function sha256Hex(body: Buffer | string): string {
  return createHash('sha256').update(body).digest('hex');
}

/** Set by a mirror on answers it proxied from the primary (packages/shared/src/protocol/routes.ts HEADERS.proxied). */
export const PROXIED_HEADER = 'x-metasync-proxied';

/** A mirror answered from its own applied generation (not via its proxy fallback) with this content. */
export function servedFromMirror(response: HttpResponse, test: (body: Buffer) => boolean): boolean {
  return response.status === 200 && response.headers[PROXIED_HEADER] === undefined && test(response.body);
}

/**
 * Polls one path on a server until `isVisible` accepts the response; returns
 * the hrtime of the first accepted response. Each poll waits for the previous
 * answer, so a slow server is not buried under requests.
 */
export async function pollUntilVisible(options: {
  url: string;
  isVisible: (response: HttpResponse) => boolean;
  intervalMs: number;
  timeoutMs: number;
  agent: Agent;
}): Promise<bigint> {
  const startedNs = nowNs();
  for (let attempt = 0; attempt < 10_000_000; attempt++) {
    const response = await httpRequest(options.url, { agent: options.agent, timeoutMs: options.timeoutMs });
    if (options.isVisible(response)) return process.hrtime.bigint();
    if (elapsedMs(startedNs) > options.timeoutMs) break;
    if (options.intervalMs > 0) await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
  }
  throw new Error(`${options.url} did not show the expected content within ${options.timeoutMs} ms`);
}

/**
 * The daemons' RSS in decimal MB, as one line (the mirrors' memory at this size, with no serve load); the first
 * (the primary) with its inotifywait child's after a plus.
 */
export async function fleetMemory(pids: readonly (number | undefined)[]): Promise<string> {
  const rss = await Promise.all(pids.map(async (pid) => (pid === undefined ? NaN : (await readProcMemory(pid)).rssBytes / 1e6)));
  const watcher = pids[0] === undefined ? 0 : (await readChildRssBytes(pids[0], 'inotifywait')) / 1e6;
  return rss.map((mb, i) => (i === 0 && watcher > 0 ? `${mb.toFixed(0)}+${watcher.toFixed(0)}` : mb.toFixed(0))).join(', ');
}
