/**
 * What the upstream follower reports about itself, read by /metrics,
 * `/health/upstream` and the status page. main.ts creates one and hands it to
 * both the follower and the app (the app is built first).
 *
 * Fresh = following (bootstrap done), the last round succeeded, and it
 * succeeded recently. Anything else is stale, with the reason.
 */
export type UpstreamPhase = 'starting' | 'bootstrap' | 'resync' | 'follow';

export interface UpstreamProgress {
  /** p2 files (`name` and `name~dev`) this pass has to look at. */
  total: number;
  done: number;
  failed: number;
  startedMs: number;
}

export interface UpstreamStatusSnapshot {
  upstream: string;
  phase: UpstreamPhase;
  fresh: boolean;
  /** Why the primary is not fresh; undefined when fresh. */
  staleReason: string | undefined;
  /** The same as a metric label: an error code, or `starting`, `bootstrap`, `resync`, `silent`; `none` when fresh. */
  staleCode: string;
  /** The last failed round's error code and message; cleared by a good round. */
  lastError: { code: string; message: string; atMs: number } | undefined;
  lastSuccessMs: number | undefined;
  /** The change feed cursor, 1/10000 s. */
  cursor: number | undefined;
  progress: UpstreamProgress | undefined;
  refused: Readonly<Record<string, number>>;
  retries: Readonly<Record<string, number>>;
}

export interface UpstreamStatus {
  snapshot(nowMs?: number): UpstreamStatusSnapshot;
  setPhase(phase: UpstreamPhase): void;
  setCursor(cursor: number): void;
  setProgress(progress: UpstreamProgress | undefined): void;
  succeeded(nowMs: number): void;
  failed(error: { code: string; message: string }, nowMs: number): void;
  refused(reason: string, count?: number): void;
  retried(reason: string): void;
}

export function createUpstreamStatus(options: { upstream: string; pollMs: number }): UpstreamStatus {
  // A round can take several timeouts; beyond this without a good one the follower counts as stuck.
  const maxSilenceMs = Math.max(10 * options.pollMs, 60_000);
  let phase: UpstreamPhase = 'starting';
  let lastError: UpstreamStatusSnapshot['lastError'];
  let lastSuccessMs: number | undefined;
  let cursor: number | undefined;
  let progress: UpstreamProgress | undefined;
  const refusedCounts: Record<string, number> = {};
  const retryCounts: Record<string, number> = {};

  function stale(nowMs: number): { code: string; reason: string } | undefined {
    if (lastError !== undefined) return { code: lastError.code, reason: `${lastError.code}: ${lastError.message}` };
    if (phase !== 'follow')
      return { code: phase, reason: phase === 'starting' ? 'starting: no round finished yet' : `${phase} in progress` };
    if (lastSuccessMs === undefined || nowMs - lastSuccessMs > maxSilenceMs) {
      return { code: 'silent', reason: `no successful poll for more than ${maxSilenceMs} ms` };
    }
    return undefined;
  }

  return {
    snapshot(nowMs = Date.now()) {
      const reason = stale(nowMs);
      return {
        upstream: options.upstream,
        phase,
        fresh: reason === undefined,
        staleReason: reason?.reason,
        staleCode: reason?.code ?? 'none',
        lastError,
        lastSuccessMs,
        cursor,
        progress: progress === undefined ? undefined : { ...progress },
        refused: { ...refusedCounts },
        retries: { ...retryCounts },
      };
    },
    setPhase(next) {
      phase = next;
    },
    setCursor(next) {
      cursor = next;
    },
    setProgress(next) {
      progress = next;
    },
    succeeded(nowMs) {
      lastSuccessMs = nowMs;
      lastError = undefined;
    },
    failed(error, nowMs) {
      lastError = { code: error.code, message: error.message.slice(0, 500), atMs: nowMs };
    },
    refused(reason, count = 1) {
      refusedCounts[reason] = (refusedCounts[reason] ?? 0) + count;
    },
    retried(reason) {
      retryCounts[reason] = (retryCounts[reason] ?? 0) + 1;
    },
  };
}
