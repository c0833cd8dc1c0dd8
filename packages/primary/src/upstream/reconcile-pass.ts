/**
 * A full pass over the upstream's package list: the bootstrap, and the resync
 * the change feed asks for when our cursor is older than it remembers.
 *
 *   list names (list.json or available-packages) -> refuse invalid names (traversal, case, junk)
 *   for each name: fetch p2/<name>.json and p2/<name>~dev.json (p-queue, bounded)
 *                  -> a generation every 500 paths or 1 s (the bytes as served; gone upstream: deleted)
 *   last generation: our packages.json + deletion of every upstream path whose package left the list
 *
 * Bootstrap skips files already in the manifest (a restart resumes where the
 * killed run stopped; the change feed replays what changed meanwhile). Resync
 * asks for held files with If-Modified-Since the old cursor: only what changed
 * since comes back.
 */
import { isMetasyncError, metasyncError, packageKeyFromP2Path } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import PQueue from 'p-queue';
import { renderRootPackagesJson } from '../composer/render.js';
import type { Publisher, SourceChange } from '../publish/publisher.js';
import { p2PathOfKey, parsePackageList, partitionNames, type UpstreamRoot } from './documents.js';
import { fetchP2, type P2Request } from './fetch-p2.js';
import type { UpstreamHttp } from './http-client.js';
import type { UpstreamProgress, UpstreamStatus } from './status.js';

export const ROOT_PATH = 'packages.json';
/** Our own root: relative URLs only (never the upstream's host), the change feed being the primary's own. */
export const UPSTREAM_ROOT = renderRootPackagesJson({ availablePackages: undefined, metadataChangesUrl: '/metadata/changes.json' });

export interface PassDeps {
  http: UpstreamHttp;
  publisher: Publisher;
  status: UpstreamStatus;
  log: Logger;
  concurrency: number;
  /** Most paths per generation during a pass (default 500). */
  flushPaths?: number;
  /** Commit what was fetched at least this often (default 1 s). */
  flushMs?: number;
  lagRetries: number;
  lagRetryMs: number;
  signal: AbortSignal;
  onProgress?: ((progress: UpstreamProgress) => void) | undefined;
  now?: () => number;
}

export interface PassResult {
  names: number;
  fetched: number;
  unchanged: number;
  deleted: number;
  failed: number;
  /** The error of the last failed file, when any failed. */
  lastError: unknown;
  durationMs: number;
}

async function listNames(deps: PassDeps, root: UpstreamRoot): Promise<string[]> {
  let raw: unknown[];
  if (root.availablePackages !== undefined) {
    raw = root.availablePackages;
  } else {
    const url = root.listUrl as string;
    const response = await deps.http.get(url, { signal: deps.signal });
    if (response.status !== 200) {
      throw metasyncError('METASYNC_ERR_UPSTREAM_INVALID', `package list ${url} answered ${response.status}`, { url, reason: 'list' });
    }
    raw = parsePackageList(response.body, url);
  }
  const { valid, refused } = partitionNames(raw);
  if (refused.length > 0) {
    deps.status.refused('list-name', refused.length);
    deps.log.warn(
      { code: 'METASYNC_ERR_UPSTREAM_INVALID', refused: refused.slice(0, 10), count: refused.length },
      'upstream package list names refused (not valid Composer names)',
    );
  }
  return valid;
}

export async function runReconcilePass(
  deps: PassDeps,
  options: { root: UpstreamRoot; mode: 'bootstrap' | 'resync'; heldValidSinceMs?: number | undefined },
): Promise<PassResult> {
  const now = deps.now ?? Date.now;
  const { publisher, log } = deps;
  const startedMs = now();
  const names = await listNames(deps, options.root);
  const listed = new Set(names);
  const progress: UpstreamProgress = { total: names.length * 2, done: 0, failed: 0, startedMs };
  deps.status.setProgress(progress);
  const result: PassResult = { names: names.length, fetched: 0, unchanged: 0, deleted: 0, failed: 0, lastError: undefined, durationMs: 0 };
  const queue = new PQueue({ concurrency: deps.concurrency });
  const flushPaths = deps.flushPaths ?? 500;
  const flushMs = deps.flushMs ?? 1_000;
  let lastLogMs = startedMs;

  const report = (): void => {
    deps.onProgress?.(progress);
    if (now() - lastLogMs < 5_000) return;
    lastLogMs = now();
    const seconds = Math.max(0.001, (lastLogMs - startedMs) / 1000);
    log.info({ mode: options.mode, ...progress, pathsPerSecond: Math.round(progress.done / seconds) }, 'upstream pass progress');
  };

  // Fetches run continuously; what they bring is committed every `flushPaths` paths or `flushMs`,
  // one generation at a time, so a killed bootstrap loses at most that much work.
  let pending: SourceChange[] = [];
  let lastFlushMs = startedMs;
  let committing: Promise<unknown> = Promise.resolve();
  let unreachableRun = 0;
  const flush = (): void => {
    if (pending.length === 0) return;
    const changes = pending;
    pending = [];
    lastFlushMs = now();
    committing = committing.then(() => publisher.submit(changes, 'upstream'));
    // Awaited after the fetches; handled here so a failed commit is not an unhandled rejection meanwhile.
    committing.catch(() => undefined);
  };
  const fetchOne = async (request: P2Request): Promise<void> => {
    try {
      const outcome = await fetchP2(request, { ...deps, metadataUrl: options.root.metadataUrl });
      unreachableRun = 0;
      const path = p2PathOfKey(request.key);
      if (outcome.kind === 'content') {
        pending.push({ path, content: outcome.content });
        result.fetched++;
      } else if (outcome.kind === 'unchanged') {
        result.unchanged++;
      } else if (publisher.getEntry(path) !== undefined) {
        pending.push({ path, deleted: true });
        result.deleted++;
      }
    } catch (err) {
      if (deps.signal.aborted) throw err;
      progress.failed++;
      result.failed++;
      result.lastError = err;
      if (isMetasyncError(err, 'METASYNC_ERR_UPSTREAM_UNREACHABLE')) unreachableRun++;
      if (isMetasyncError(err, 'METASYNC_ERR_UPSTREAM_INVALID')) deps.status.refused(String(err.details.reason ?? 'invalid'));
      log.warn({ err, key: request.key }, 'upstream file not fetched; retried next pass');
    } finally {
      progress.done++;
      report();
      if (pending.length >= flushPaths || now() - lastFlushMs >= flushMs) flush();
    }
  };

  // No promise kept per request: a packagist.org pass is ~900k of them (memory must not grow with the repository).
  for (const name of names) {
    if (deps.signal.aborted) throw deps.signal.reason;
    // The upstream is down, not one file: stop instead of timing out on every name.
    if (unreachableRun >= deps.concurrency * 2) break;
    for (const key of [name, `${name}~dev`]) {
      const held = publisher.getEntry(p2PathOfKey(key))?.origin === 'upstream';
      if (held && options.mode === 'bootstrap') {
        progress.done++;
        continue;
      }
      // Bounded memory: no more than a few requests per connection wait in the queue.
      if (queue.size >= deps.concurrency * 4) await queue.onSizeLessThan(deps.concurrency * 2);
      // fetchOne settles every outcome itself; only an abort rejects, and that is checked after onIdle().
      queue.add(() => fetchOne({ key, ifModifiedSinceMs: held ? options.heldValidSinceMs : undefined })).catch(() => undefined);
    }
  }
  await queue.onIdle();
  if (deps.signal.aborted) throw deps.signal.reason;
  flush();
  await committing;
  if (unreachableRun >= deps.concurrency * 2) throw result.lastError;

  // Paths of packages no longer listed, and our root, in one last generation.
  const last: SourceChange[] = [];
  for (const path of publisher.pathsFrom('upstream')) {
    if (path === ROOT_PATH) continue;
    const key = packageKeyFromP2Path(path);
    if (key === undefined || !listed.has(key.replace(/~dev$/, ''))) last.push({ path, deleted: true });
  }
  result.deleted += last.length;
  if (publisher.getEntry(ROOT_PATH)?.origin !== 'upstream' || !(await sameRoot(publisher)))
    last.push({ path: ROOT_PATH, content: UPSTREAM_ROOT });
  if (last.length > 0) await publisher.submit(last, 'upstream');
  result.durationMs = now() - startedMs;
  deps.onProgress?.(progress);
  log.info(
    {
      mode: options.mode,
      ...result,
      lastError: undefined,
      pathsPerSecond: Math.round(progress.total / Math.max(0.001, result.durationMs / 1000)),
    },
    'upstream pass finished',
  );
  return result;
}

async function sameRoot(publisher: Publisher): Promise<boolean> {
  const entry = publisher.getEntry(ROOT_PATH);
  return entry !== undefined && (await publisher.readObject(entry.sha256)).equals(UPSTREAM_ROOT);
}
