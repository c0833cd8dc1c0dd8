/**
 * Freshness is health (invariant 9): DNS health checks hit `/health/fresh`, so
 * it must fail when the mirror is behind, not only when the process is down.
 *
 * The mirror cannot observe the primary's head directly, only "as last heard"
 * (SSE head events and state polls). So it is fresh only while all hold:
 *   - it heard from the primary within maxLagMs (silence may hide new heads);
 *   - it is at most maxLagSeq generations behind the head it heard;
 *   - it has been behind for at most maxLagMs (the clock starts when it first
 *     heard of a head above its applied seq, so no clock sync with the primary);
 *     silence and time behind run on the mirror's monotonic clock (`monoNowMs`),
 *     so a wall-clock step (an NTP correction of an hour) neither hides silence
 *     nor flaps the check;
 *   - (freeze defence) a signed state answering its own random nonce was
 *     verified within maxUnconfirmedMs, measured on the mirror's monotonic
 *     clock. Replayed answers and events keep `heardAtMs` young but can never
 *     answer a new nonce, so a frozen or replaying path turns the mirror stale.
 *     When several rules fail the reasons are all listed.
 */
export interface SyncStatus {
  /** Primary head as last heard. */
  headSeq: number;
  /** When the primary last answered anything (`monoNowMs`: a wall-clock step must not hide silence); undefined = never. */
  heardAtMs: number | undefined;
  /** When the mirror first learned of a head above its applied seq (`monoNowMs`); undefined when caught up. */
  behindSinceMs: number | undefined;
  /** Short text of the last sync failure, shown in the health body. */
  lastError: string | undefined;
  /** Set while the primary reports a head below the mirror's applied seq (restored from an old backup?). */
  primaryBehindSeq: number | undefined;
  /**
   * Monotonic time (see `monoNowMs`) a signed state answering the mirror's nonce
   * was last verified, or when the syncer started; undefined = not syncing yet.
   */
  confirmedAtMonoMs: number | undefined;
  /** Head seq of the last confirmed state. */
  confirmedSeq: number | undefined;
  /** Error code of the last state answer refused since the last confirmation (replayed, unsigned, forged). */
  stateRefusal: string | undefined;
  /** The monotonic clock (ms) for the confirmation age: immune to wall-clock jumps and to the primary's clock. */
  monoNowMs: () => number;
}

export interface FreshnessLimits {
  maxLagSeq: number;
  maxLagMs: number;
  /** Longest time without a verified, nonce-matching signed state; 0 or absent = rule off. */
  maxUnconfirmedMs?: number;
}

export interface Freshness {
  fresh: boolean;
  lagSeq: number;
  lagMs: number;
  reason: string;
}

export function createSyncStatus(options: { monoNowMs?: () => number } = {}): SyncStatus {
  return {
    headSeq: 0,
    heardAtMs: undefined,
    behindSinceMs: undefined,
    lastError: undefined,
    primaryBehindSeq: undefined,
    confirmedAtMonoMs: undefined,
    confirmedSeq: undefined,
    stateRefusal: undefined,
    monoNowMs: options.monoNowMs ?? (() => performance.now()),
  };
}

/** Starts the confirmation clock (sync start): a mirror gets maxUnconfirmedMs for its first confirmation. */
export function armConfirmation(status: SyncStatus): void {
  status.confirmedAtMonoMs ??= status.monoNowMs();
}

/**
 * Records a verified state whose nonce matched the challenge just sent.
 * `headWhenAsked` is `status.headSeq` when the challenge left: the primary's
 * head only grows, so a head heard before that and above what it has just
 * signed was false (an unsigned event or hint, e.g. forged) and is dropped,
 * unless a newer head arrived meanwhile. Otherwise one forged event would keep
 * the mirror "behind" after the attack ended.
 */
export function noteConfirmed(status: SyncStatus, seq: number, headWhenAsked?: number): void {
  status.confirmedAtMonoMs = status.monoNowMs();
  status.confirmedSeq = seq;
  if (headWhenAsked !== undefined && headWhenAsked > seq && status.headSeq === headWhenAsked) status.headSeq = seq;
  status.stateRefusal = undefined;
}

/** Records a state answer that failed the challenge; it confirms nothing (and says why in the health body). */
export function noteStateRefused(status: SyncStatus, code: string): void {
  status.stateRefusal = code;
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
  const lag = assessLag(status, appliedSeq, nowMs, limits);
  const unconfirmed = unconfirmedReason(status, limits);
  if (unconfirmed === undefined) return lag;
  const suffix = status.lastError === status.stateRefusal ? '' : errorSuffix(status);
  return { ...lag, fresh: false, reason: lag.fresh ? `${unconfirmed}${suffix}` : `${lag.reason}; ${unconfirmed}` };
}

/** Why the primary's signed state counts as unconfirmed, or undefined while it is confirmed recently enough. */
function unconfirmedReason(status: SyncStatus, limits: FreshnessLimits): string | undefined {
  const boundMs = limits.maxUnconfirmedMs ?? 0;
  if (boundMs <= 0 || status.confirmedAtMonoMs === undefined) return undefined;
  const ageMs = Math.round(status.monoNowMs() - status.confirmedAtMonoMs);
  if (ageMs <= boundMs) return undefined;
  const since = status.confirmedSeq === undefined ? 'never confirmed since sync start' : `last confirmed at head ${status.confirmedSeq}`;
  const refused = status.stateRefusal === undefined ? '' : `; answers refused: ${status.stateRefusal}`;
  return `primary signed state not confirmed for ${formatSeconds(ageMs)} (bound ${formatSeconds(boundMs)}; ${since}${refused})`;
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

function assessLag(status: SyncStatus, appliedSeq: number, nowMs: number, limits: FreshnessLimits): Freshness {
  const lagSeq = Math.max(0, status.headSeq - appliedSeq);
  const lagMs = status.behindSinceMs === undefined ? 0 : Math.max(0, Math.round(nowMs - status.behindSinceMs));
  const base = { lagSeq, lagMs };
  if (status.heardAtMs === undefined) return { ...base, fresh: false, reason: `primary never heard from${errorSuffix(status)}` };
  const silentMs = Math.round(nowMs - status.heardAtMs);
  if (silentMs > limits.maxLagMs) {
    return { ...base, fresh: false, reason: `primary silent for ${silentMs} ms (max ${limits.maxLagMs})${errorSuffix(status)}` };
  }
  if (status.primaryBehindSeq !== undefined) {
    return {
      ...base,
      fresh: false,
      reason: `primary reports seq ${status.primaryBehindSeq}, below the applied seq ${appliedSeq}: refusing to roll back`,
    };
  }
  if (appliedSeq === 0 && status.headSeq > 0) return { ...base, fresh: false, reason: `bootstrapping towards seq ${status.headSeq}` };
  if (lagSeq > limits.maxLagSeq)
    return { ...base, fresh: false, reason: `behind by ${lagSeq} seq (max ${limits.maxLagSeq})${errorSuffix(status)}` };
  if (lagMs > limits.maxLagMs)
    return { ...base, fresh: false, reason: `behind for ${lagMs} ms (max ${limits.maxLagMs})${errorSuffix(status)}` };
  return { ...base, fresh: true, reason: `fresh seq ${appliedSeq} head ${status.headSeq} lag ${lagSeq} seq ${lagMs} ms` };
}

function errorSuffix(status: SyncStatus): string {
  return status.lastError === undefined ? '' : `; last error: ${status.lastError}`;
}

/**
 * Set by a drain request (serve/admin.ts) or shutdown: `/health/fresh` then
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
