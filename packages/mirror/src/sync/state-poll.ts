import { HEADERS, SYNC_ROUTES, isMetasyncError, type StateResponse } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import { noteConfirmed, noteHead, noteStateRefused, type SyncStatus } from '../health.js';
import type { IndexLog } from '../index/index-log.js';
import type { MirrorMetrics } from '../metrics.js';
import { isPrimaryBehind, protocolError } from './batch-rules.js';
import type { PrimaryClient } from './primary-client.js';
import { newStateNonce, parseState, verifyStateAnswer } from './state-challenge.js';
import type { TrustedKeys } from './trusted-keys.js';

export interface StatePollOptions {
  log: IndexLog;
  client: PrimaryClient;
  keys: TrustedKeys;
  status: SyncStatus;
  metrics: MirrorMetrics;
  logger: Logger;
}

export interface PolledState {
  /** The parsed answer, verified or not: like an SSE head it may only trigger verified pulls. */
  hint: StateResponse;
  /** True when it answered this poll's challenge; only then does it move the head and check rollback. */
  confirmed: boolean;
}

export interface StatePoll {
  fetchState(): Promise<PolledState>;
}

/** Errors of a state poll that mean its answer was refused, not that the primary was unreachable. */
const REFUSED_STATE_CODES: ReadonlySet<string> = new Set([
  'METASYNC_ERR_SYNC_CHALLENGE_FAILED',
  'METASYNC_ERR_SIGNATURE_INVALID',
  'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY',
]);

/** Every state request is a freshness challenge (state-challenge.ts): only a verified answer to its nonce counts. */
export function createStatePoll(options: StatePollOptions): StatePoll {
  const { log, client, keys, status, metrics, logger } = options;
  let stateRefused = false;

  async function fetchState(): Promise<PolledState> {
    // Compared with what was applied when the question left: an answer racing an apply is not a rollback.
    const appliedWhenAsked = log.state.seq;
    const headWhenAsked = status.headSeq;
    const nonce = newStateNonce();
    const response = await client.get(SYNC_ROUTES.state, { maxBytes: 1024 * 1024, query: { nonce } });
    if (response.status !== 200) throw protocolError(`state answered HTTP ${response.status}`);
    const hint = parseState(response.body);
    await keys.load(hint);
    let state: StateResponse;
    try {
      state = await keys.verifying((trusted) =>
        verifyStateAnswer(
          { body: response.body, signature: response.headers[HEADERS.signature] },
          { nonce, keys: trusted, nowMs: Date.now() },
        ),
      );
    } catch (err) {
      if (!isMetasyncError(err) || !REFUSED_STATE_CODES.has(err.code)) throw err;
      refuseState(err.code, err);
      return { hint, confirmed: false };
    }
    stateRefused = false;
    noteConfirmed(status, state.seq, headWhenAsked);
    noteHead(status, state.seq, log.state.seq, status.monoNowMs());
    if (isPrimaryBehind(state.seq, appliedWhenAsked)) {
      if (status.primaryBehindSeq === undefined)
        logger.error(
          { primarySeq: state.seq, applied: appliedWhenAsked },
          'primary is behind the applied generation; refusing to roll back',
        );
      status.primaryBehindSeq = state.seq;
    } else status.primaryBehindSeq = undefined;
    metrics.headSeq.set(status.headSeq);
    return { hint: state, confirmed: true };
  }

  /** A refused answer (replay, forgery) is an attack signal, unlike an unreachable primary: counted, warned once per episode. */
  function refuseState(code: string, err: unknown): void {
    status.lastError = code;
    noteStateRefused(status, code);
    metrics.syncErrors.inc({ code });
    if (!stateRefused) logger.warn({ err }, 'refused state answer');
    stateRefused = true;
  }

  return { fetchState };
}
