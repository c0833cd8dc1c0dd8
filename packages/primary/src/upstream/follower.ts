/**
 * `--upstream`: the primary follows an upstream Composer v2 repository
 * (packagist.org, another metasync primary) as composer/mirror does, but every
 * change lands as a signed generation through the same publisher as the other
 * sources.
 *
 *   no state    -> root, start cursor (400 without since), save {bootstrap, T0} -> bootstrap pass -> save {follow, T0}
 *   bootstrap   -> (resumed after a kill) bootstrap pass, skipping files already held
 *   follow      -> poll since=T every pollMs -> one generation -> save T'
 *                  resync action -> save {resync, T', from T} -> pass with If-Modified-Since T -> save {follow, T'}
 *
 * A failed round changes nothing: the primary keeps serving its last
 * generation, the status says stale and why, and the next round retries
 * (backing off up to `maxBackoffMs`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isMetasyncError, metasyncError } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import type { Publisher } from '../publish/publisher.js';
import { parseStartTimestamp, parseUpstreamRoot, rootUrlOf, type UpstreamRoot } from './documents.js';
import { createUpstreamHttp, type UpstreamHttp } from './http-client.js';
import type { UpstreamConfig } from './options.js';
import { runPollRound } from './poll-round.js';
import { runReconcilePass } from './reconcile-pass.js';
import { readFollowerState, writeFollowerState, type FollowerState } from './state.js';
import type { UpstreamProgress, UpstreamStatus } from './status.js';

export interface UpstreamFollowerOptions {
  config: UpstreamConfig;
  dataDir: string;
  publisher: Publisher;
  status: UpstreamStatus;
  log: Logger;
  onProgress?: (progress: UpstreamProgress) => void;
  /** Tests shorten these; defaults suit packagist.org. */
  lagRetries?: number;
  lagRetryMs?: number;
  maxBackoffMs?: number;
  http?: UpstreamHttp;
  now?: () => number;
}

export interface UpstreamFollower {
  close(): Promise<void>;
}

const UNITS_PER_MS = 10;
const ROOT_REFRESH_MS = 600_000;

export function startUpstreamFollower(options: UpstreamFollowerOptions): UpstreamFollower {
  const { config, status, log, publisher } = options;
  const now = options.now ?? Date.now;
  const abort = new AbortController();
  const http =
    options.http ??
    createUpstreamHttp({ concurrency: config.concurrency, timeoutMs: config.timeoutMs, log, onRetry: (reason) => status.retried(reason) });
  const rootUrl = rootUrlOf(config.url);
  const maxBackoffMs = options.maxBackoffMs ?? Math.max(config.pollMs, 30_000);
  const deps = {
    http,
    publisher,
    status,
    log,
    concurrency: config.concurrency,
    lagRetries: options.lagRetries ?? 3,
    lagRetryMs: options.lagRetryMs ?? 2_000,
    signal: abort.signal,
    onProgress: options.onProgress,
    now,
  };

  async function fetchRoot(): Promise<UpstreamRoot> {
    const response = await http.get(rootUrl, { signal: abort.signal });
    if (response.status !== 200) {
      status.refused('root');
      throw metasyncError('METASYNC_ERR_UPSTREAM_INVALID', `upstream root ${rootUrl} answered ${response.status}`, {
        url: rootUrl,
        reason: 'root',
      });
    }
    try {
      return parseUpstreamRoot(response.body, rootUrl);
    } catch (err) {
      status.refused('root');
      throw err;
    }
  }

  async function startCursor(root: UpstreamRoot): Promise<number> {
    const response = await http.get(root.changesUrl, { signal: abort.signal });
    if (response.status !== 400 && response.status !== 200) {
      throw metasyncError('METASYNC_ERR_UPSTREAM_INVALID', `change feed ${root.changesUrl} answered ${response.status} without since`, {
        url: root.changesUrl,
        reason: 'changes',
      });
    }
    return parseStartTimestamp(response.body, root.changesUrl);
  }

  async function save(state: FollowerState): Promise<FollowerState> {
    await writeFollowerState(options.dataDir, state);
    status.setCursor(state.cursor);
    status.setPhase(state.phase);
    return state;
  }

  /** One round; returns the state after it. Throws when the round failed (nothing was saved past what committed). */
  async function round(state: FollowerState | undefined, root: UpstreamRoot): Promise<FollowerState> {
    if (state === undefined) {
      const cursor = await startCursor(root);
      state = await save({ version: 1, upstream: rootUrl, phase: 'bootstrap', cursor, cursorFrom: 'start' });
      log.info({ upstream: rootUrl, cursor }, 'upstream bootstrap started');
    }
    if (state.phase === 'follow') {
      const polled = await runPollRound(deps, { root, cursor: state.cursor, cursorFrom: state.cursorFrom });
      if (polled.kind === 'resync') {
        log.warn({ upstream: rootUrl, cursor: state.cursor, timestamp: polled.timestamp }, 'upstream asked for a resync');
        return save({ ...state, phase: 'resync', cursor: polled.timestamp, cursorFrom: 'changes', resyncFrom: state.cursor });
      }
      if (polled.paths > 0) log.info({ paths: polled.paths, seq: polled.seq, cursor: polled.timestamp }, 'upstream changes committed');
      if (polled.timestamp === state.cursor && state.cursorFrom === 'changes') return state;
      return save({ ...state, cursor: polled.timestamp, cursorFrom: 'changes' });
    }
    status.setPhase(state.phase);
    const result = await runReconcilePass(deps, {
      root,
      mode: state.phase,
      // Held files are known current up to the old cursor (1 s earlier: Last-Modified has 1 s resolution).
      heldValidSinceMs: state.resyncFrom === undefined ? undefined : Math.floor(state.resyncFrom / UNITS_PER_MS) - 1_000,
    });
    if (result.failed > 0) {
      const cause = result.lastError as { code?: string; message?: string } | undefined;
      throw metasyncError(
        isMetasyncError(result.lastError) ? result.lastError.code : 'METASYNC_ERR_UPSTREAM_UNREACHABLE',
        `${state.phase} incomplete: ${result.failed} of ${result.names * 2} files failed (last: ${cause?.message ?? 'unknown'})`,
        { failed: result.failed },
      );
    }
    const { resyncFrom: _done, ...rest } = state;
    return save({ ...rest, phase: 'follow' });
  }

  const running = (async () => {
    let state = await readFollowerState(options.dataDir);
    if (state !== undefined && state.upstream !== rootUrl) {
      log.warn({ was: state.upstream, now: rootUrl }, 'upstream changed: starting over with a bootstrap');
      state = undefined;
    }
    if (state !== undefined) {
      status.setCursor(state.cursor);
      status.setPhase(state.phase);
    }
    let root: UpstreamRoot | undefined;
    let rootReadMs = 0;
    let failures = 0;
    while (!abort.signal.aborted) {
      let again = false;
      try {
        // The root is re-read for each pass, after any failure and every 10 min (its URLs may have moved).
        if (root === undefined || state?.phase !== 'follow' || now() - rootReadMs > ROOT_REFRESH_MS) {
          root = await fetchRoot();
          rootReadMs = now();
        }
        const before = state?.phase;
        state = await round(state, root);
        again = state.phase !== before && state.phase !== 'follow';
        failures = 0;
        status.succeeded(now());
      } catch (err) {
        if (abort.signal.aborted) break;
        failures++;
        root = undefined;
        const code = isMetasyncError(err) ? err.code : 'METASYNC_ERR_UPSTREAM_UNREACHABLE';
        status.failed({ code, message: err instanceof Error ? err.message : String(err) }, now());
        log.warn({ err, failures, upstream: rootUrl }, 'upstream round failed; serving the last generation');
      }
      if (again) continue;
      const delayMs = failures === 0 ? config.pollMs : Math.min(maxBackoffMs, config.pollMs * 2 ** (failures - 1));
      try {
        await sleep(delayMs, undefined, { signal: abort.signal });
      } catch {
        break;
      }
    }
  })();

  return {
    async close() {
      abort.abort(metasyncError('METASYNC_ERR_SYNC_UNREACHABLE', 'upstream follower stopped'));
      await running.catch((err: unknown) => log.error({ err }, 'upstream follower ended with an error'));
      await http.close();
    },
  };
}
