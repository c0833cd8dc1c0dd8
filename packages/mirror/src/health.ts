/**
 * Freshness is health (invariant 9): DNS health checks hit `/health/fresh`, so
 * it must fail when the mirror is behind, not only when the process is down.
 *
 * The mirror cannot observe the primary's head directly, only "as last heard"
 * (SSE head events and state polls). So it is fresh only while all hold:
 *   - it heard from the primary within maxLagMs (silence may hide new heads);
 *   - it is at most maxLagSeq generations behind the head it heard;
 *   - it has been behind for at most maxLagMs (the clock starts when it first
 *     heard of a head above its applied seq, so no clock sync with the primary).
 */
export interface SyncStatus {
  /** Primary head as last heard. */
  headSeq: number;
  /** When the primary last answered anything (ms, local clock); undefined = never. */
  heardAtMs: number | undefined;
  /** When the mirror first learned of a head above its applied seq; undefined when caught up. */
  behindSinceMs: number | undefined;
  /** Short text of the last sync failure, shown in the health body. */
  lastError: string | undefined;
  /** Set while the primary reports a head below the mirror's applied seq (restored from an old backup?). */
  primaryBehindSeq: number | undefined;
}

export interface FreshnessLimits {
  maxLagSeq: number;
  maxLagMs: number;
}

export interface Freshness {
  fresh: boolean;
  lagSeq: number;
  lagMs: number;
  reason: string;
}

export function createSyncStatus(): SyncStatus {
  return { headSeq: 0, heardAtMs: undefined, behindSinceMs: undefined, lastError: undefined, primaryBehindSeq: undefined };
}

/** Records what the primary said its head is; keeps `behindSinceMs` consistent. */
export function noteHead(status: SyncStatus, headSeq: number, appliedSeq: number, nowMs: number): void {
  status.heardAtMs = nowMs;
  if (headSeq > status.headSeq) status.headSeq = headSeq;
  noteApplied(status, appliedSeq, nowMs);
}

export function noteApplied(status: SyncStatus, appliedSeq: number, nowMs: number): void {
  if (appliedSeq >= status.headSeq) status.behindSinceMs = undefined;
  else status.behindSinceMs ??= nowMs;
}

export function assessFreshness(status: SyncStatus, appliedSeq: number, nowMs: number, limits: FreshnessLimits): Freshness {
  const lagSeq = Math.max(0, status.headSeq - appliedSeq);
  const lagMs = status.behindSinceMs === undefined ? 0 : Math.max(0, nowMs - status.behindSinceMs);
  const base = { lagSeq, lagMs };
  if (status.heardAtMs === undefined) return { ...base, fresh: false, reason: 'primary never heard from' };
  const silentMs = nowMs - status.heardAtMs;
  if (silentMs > limits.maxLagMs) {
    return { ...base, fresh: false, reason: `primary silent for ${silentMs} ms (max ${limits.maxLagMs})${errorSuffix(status)}` };
  }
  if (status.primaryBehindSeq !== undefined) {
    return { ...base, fresh: false, reason: `primary reports seq ${status.primaryBehindSeq}, below the applied seq ${appliedSeq}: refusing to roll back` };
  }
  if (appliedSeq === 0 && status.headSeq > 0) return { ...base, fresh: false, reason: `bootstrapping towards seq ${status.headSeq}` };
  if (lagSeq > limits.maxLagSeq) return { ...base, fresh: false, reason: `behind by ${lagSeq} seq (max ${limits.maxLagSeq})${errorSuffix(status)}` };
  if (lagMs > limits.maxLagMs) return { ...base, fresh: false, reason: `behind for ${lagMs} ms (max ${limits.maxLagMs})${errorSuffix(status)}` };
  return { ...base, fresh: true, reason: `fresh seq ${appliedSeq} head ${status.headSeq} lag ${lagSeq} seq ${lagMs} ms` };
}

function errorSuffix(status: SyncStatus): string {
  return status.lastError === undefined ? '' : `; last error: ${status.lastError}`;
}

/**
 * Set by a drain request (routes/admin.ts) or shutdown: `/health/fresh` then
 * answers 503 `draining` whatever the sync state, so DNS health checks fail
 * closed while the mirror keeps serving the clients that still come.
 */
export interface DrainState {
  draining: boolean;
  sinceMs: number | undefined;
}

export function createDrainState(): DrainState {
  return { draining: false, sinceMs: undefined };
}

export function startDraining(drain: DrainState, nowMs: number): void {
  drain.draining = true;
  drain.sinceMs ??= nowMs;
}
