/**
 * One poll of the upstream's change feed, Packagist's semantics:
 *
 *   GET <changes>?since=T -> {"actions":[{type,package,time}], "timestamp":T'}
 *     resync            -> the caller runs a reconcile pass (our cursor is older than the feed keeps)
 *     update a/b[~dev]  -> fetch p2/a/b[~dev].json, Last-Modified must be >= time (else retried: CDN lag)
 *     delete a/b[~dev]  -> delete the path (and ask for a held a/b~dev: gone too, or not)
 *   -> all of it ONE generation; the caller saves T' only after it committed.
 *
 * All or nothing: a file that fails (unreachable, malformed, lagging) fails the
 * round, nothing is committed and T is asked again next poll.
 */
import { metasyncError } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import PQueue from 'p-queue';
import type { Publisher, SourceChange } from '../publish/publisher.js';
import { p2PathOfKey, parseChanges, type UpstreamRoot } from './documents.js';
import { fetchP2 } from './fetch-p2.js';
import type { UpstreamHttp } from './http-client.js';
import type { UpstreamStatus } from './status.js';

export interface PollDeps {
  http: UpstreamHttp;
  publisher: Publisher;
  status: UpstreamStatus;
  log: Logger;
  concurrency: number;
  lagRetries: number;
  lagRetryMs: number;
  signal: AbortSignal;
}

export type PollResult =
  { kind: 'resync'; timestamp: number } | { kind: 'applied'; timestamp: number; paths: number; seq: number | undefined };

export function changesUrlSince(changesUrl: string, since: number): string {
  const url = new URL(changesUrl);
  url.searchParams.set('since', String(since));
  return url.href;
}

export async function runPollRound(
  deps: PollDeps,
  options: { root: UpstreamRoot; cursor: number; cursorFrom: 'start' | 'changes' },
): Promise<PollResult> {
  const url = changesUrlSince(options.root.changesUrl, options.cursor);
  const response = await deps.http.get(url, { signal: deps.signal });
  if (response.status !== 200) {
    deps.status.refused('changes');
    throw metasyncError('METASYNC_ERR_UPSTREAM_INVALID', `change feed ${url} answered ${response.status}`, { url, reason: 'changes' });
  }
  let changes;
  try {
    changes = parseChanges(response.body, url);
  } catch (err) {
    deps.status.refused('changes');
    throw err;
  }
  if (changes.timestamp < options.cursor && options.cursorFrom === 'changes') {
    // A feed that goes back in time (a restored or misconfigured upstream) would replay or skip
    // history; keep serving what we have until it is past our cursor again.
    deps.status.refused('changes-backwards');
    throw metasyncError(
      'METASYNC_ERR_UPSTREAM_INVALID',
      `change feed ${url} answered timestamp ${changes.timestamp}, before our cursor ${options.cursor}`,
      { url, reason: 'changes-backwards', cursor: options.cursor, timestamp: changes.timestamp },
    );
  }
  if (changes.refusedKeys.length > 0) {
    deps.status.refused('changes-name', changes.refusedKeys.length);
    deps.log.warn(
      { code: 'METASYNC_ERR_UPSTREAM_INVALID', refused: changes.refusedKeys.slice(0, 10), count: changes.refusedKeys.length },
      'upstream change feed actions refused (not valid Composer names)',
    );
  }
  if (changes.actions.some((action) => action.type === 'resync')) return { kind: 'resync', timestamp: changes.timestamp };
  // The last action per file wins (the feed lists them oldest first).
  const latest = new Map<string, { type: 'update' | 'delete' | 'verify'; timeS: number }>();
  for (const action of changes.actions) {
    if (action.type === 'resync') continue;
    latest.delete(action.key);
    latest.set(action.key, { type: action.type, timeS: action.timeS });
  }
  // Whether a package's deletion lists its `~dev` file too differs between upstreams; a held
  // `~dev` file of a deleted package is asked for (404: deleted, else kept current).
  for (const [key, action] of [...latest]) {
    const devKey = `${key}~dev`;
    if (
      action.type === 'delete' &&
      !key.endsWith('~dev') &&
      !latest.has(devKey) &&
      deps.publisher.getEntry(p2PathOfKey(devKey)) !== undefined
    ) {
      latest.set(devKey, { type: 'verify', timeS: 0 });
    }
  }
  const queue = new PQueue({ concurrency: deps.concurrency });
  const submitted: SourceChange[] = [];
  await Promise.all(
    [...latest].map(([key, action]) =>
      queue.add(async () => {
        const path = p2PathOfKey(key);
        if (action.type === 'delete') {
          if (deps.publisher.getEntry(path) !== undefined) submitted.push({ path, deleted: true });
          return;
        }
        let outcome;
        try {
          const minTimeS = action.type === 'update' ? action.timeS : undefined;
          outcome = await fetchP2({ key, minTimeS }, { ...deps, metadataUrl: options.root.metadataUrl });
        } catch (err) {
          const reason = (err as { details?: { reason?: unknown } }).details?.reason;
          if ((err as { code?: string }).code === 'METASYNC_ERR_UPSTREAM_INVALID') deps.status.refused(String(reason ?? 'invalid'));
          throw err;
        }
        if (outcome.kind === 'content') submitted.push({ path, content: outcome.content });
        else if (outcome.kind === 'missing' && deps.publisher.getEntry(path) !== undefined) submitted.push({ path, deleted: true });
      }),
    ),
  );
  if (submitted.length === 0) return { kind: 'applied', timestamp: changes.timestamp, paths: 0, seq: undefined };
  const { seq } = await deps.publisher.submit(submitted, 'upstream');
  return { kind: 'applied', timestamp: changes.timestamp, paths: submitted.length, seq };
}
