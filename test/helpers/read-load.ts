import { getChecked, getText, primaryStateAt } from './mirror-cluster.js';

/**
 * Shared checks for the fault scenarios (test/fault-*.test.ts): Composer-like
 * readers that verify every body against its ETag while a fault runs, and the
 * convergence check that compares a mirror path by path with the primary.
 */

/** A path readers may ask for; `since` = when its first publish returned (ms), undefined = published before the load. */
export interface ReadablePath {
  path: string;
  sinceMs?: number;
}

export interface ReadLoadOptions {
  /** Base URLs read round-robin (re-read every request: a restarted mirror may move). */
  targets: () => readonly string[];
  paths: () => readonly ReadablePath[];
  workers: number;
  /** Think time between one worker's requests. */
  pauseMs: number;
}

export interface ReadStats {
  requests: number;
  ok: number;
  /** Bodies that failed their ETag hash (or a 200 without a sha256 ETag). */
  badBytes: number;
  serverErrors: number;
  /** 404 for a path whose publish had returned before the request started. */
  notFoundExisting: number;
  otherStatus: number;
  /** Connection refused/reset: the target process was down. */
  down: number;
  timeouts: number;
  /** Latency of every 200, ms. */
  okLatenciesMs: number[];
  samples: string[];
}

export interface ReadLoad {
  stats(): ReadStats;
  /** Stops the workers and waits for their last request. */
  stop(): Promise<ReadStats>;
}

export function startReadLoad(options: ReadLoadOptions): ReadLoad {
  const stats: ReadStats = {
    requests: 0,
    ok: 0,
    badBytes: 0,
    serverErrors: 0,
    notFoundExisting: 0,
    otherStatus: 0,
    down: 0,
    timeouts: 0,
    okLatenciesMs: [],
    samples: [],
  };
  let stopped = false;
  let turn = 0;
  const note = (key: 'badBytes' | 'serverErrors' | 'notFoundExisting' | 'otherStatus', detail: string): void => {
    stats[key]++;
    if (stats.samples.length < 20) stats.samples.push(`${key}: ${detail}`);
  };

  async function once(): Promise<void> {
    const targets = options.targets();
    const paths = options.paths();
    if (targets.length === 0 || paths.length === 0) return;
    const target = targets[turn % targets.length]!;
    const pick = paths[Math.floor(Math.random() * paths.length)]!;
    turn++;
    const startedMs = Date.now();
    stats.requests++;
    let response: Awaited<ReturnType<typeof getChecked>>;
    try {
      response = await getChecked(`${target}/${pick.path}`);
    } catch (err) {
      const name = (err as Error).name;
      if (name === 'TimeoutError' || name === 'AbortError') stats.timeouts++;
      else {
        stats.down++;
        // A process that is down refuses at once: do not spin on it.
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      return;
    }
    const where = `${target}/${pick.path} seq ${response.headers.get('x-metasync-seq')} proxied ${response.headers.get('x-metasync-proxied')}`;
    if (response.status === 200) {
      if (!response.hashOk || response.etagSha === undefined) note('badBytes', where);
      else {
        stats.ok++;
        stats.okLatenciesMs.push(Date.now() - startedMs);
      }
    } else if (response.status >= 500) note('serverErrors', `${where}: ${response.status}`);
    else if (response.status === 404) {
      if (pick.sinceMs === undefined || pick.sinceMs < startedMs) note('notFoundExisting', `${where} (${Date.now() - startedMs} ms)`);
    } else note('otherStatus', `${where}: ${response.status}`);
  }

  const workers = Array.from({ length: options.workers }, async () => {
    for (let i = 0; i < 1_000_000 && !stopped; i++) {
      await once();
      await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
    }
  });
  return {
    stats: () => stats,
    async stop() {
      stopped = true;
      await Promise.all(workers);
      return stats;
    },
  };
}

export async function appliedSeq(mirrorUrl: string): Promise<number> {
  return Number(/^metasync_mirror_applied_seq (\d+)/m.exec((await getText(`${mirrorUrl}/metrics`)).body)?.[1] ?? -1);
}

export async function headSeq(primaryUrl: string): Promise<number> {
  return Number((JSON.parse((await getText(`${primaryUrl}/sync/v1/state`)).body) as { seq: number }).seq);
}

/** Counter value from a mirror's /metrics, summed over label sets matching `labels` (a substring like `code="X"`). */
export async function metricValue(mirrorUrl: string, name: string, labels = ''): Promise<number> {
  const text = (await getText(`${mirrorUrl}/metrics`)).body;
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || !line.includes(labels)) continue;
    const match = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (match?.[1] === name) sum += Number(match[3]);
  }
  return sum;
}

/**
 * Every path of the primary's state at `seq` read from the mirror: 200, body
 * hashing to its ETag, ETag equal to the primary's hash, not proxied.
 * Returns the problems (empty when the mirror serves exactly that generation).
 */
export async function compareWithPrimary(input: {
  mirrorUrl: string;
  primaryUrl: string;
  seq: number;
}): Promise<{ paths: number; problems: string[] }> {
  const expected = await primaryStateAt(input.primaryUrl, input.seq);
  const paths = [...expected.keys()];
  const problems: string[] = [];
  for (let i = 0; i < paths.length; i += 32) {
    await Promise.all(
      paths.slice(i, i + 32).map(async (path) => {
        const response = await getChecked(`${input.mirrorUrl}/${path}`);
        const ok =
          response.status === 200 &&
          response.hashOk &&
          response.etagSha === expected.get(path) &&
          response.headers.get('x-metasync-proxied') === null;
        if (!ok)
          problems.push(
            `${path}: ${response.status} hashOk=${response.hashOk} etag=${response.etagSha ?? 'none'} want ${expected.get(path)} proxied=${response.headers.get('x-metasync-proxied')}`,
          );
      }),
    );
  }
  return { paths: paths.length, problems };
}

export function percentileMs(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
