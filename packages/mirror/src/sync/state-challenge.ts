import { randomBytes } from 'node:crypto';
import { metasyncError, stateResponseSchema, verifyBody, type PublicKeyInfo, type StateResponse } from '@metasync/shared';
import { parseSyncDocument } from './parse-document.js';

/**
 * The freeze defence's challenge (docs/protocol.md, "Freshness challenge").
 * Every state poll carries a fresh random nonce; the primary echoes it inside a
 * signed state body. A network attacker (or a caching hop) can replay old,
 * validly signed batches, snapshots, events and states, but cannot produce a
 * signature over a nonce it has never seen, so only a live primary confirms.
 *
 *   mirror: nonce = random 144 bits ---- GET state?nonce ----> primary
 *   mirror: verify signature(body) <--- {.., nonce, seq} + sig -- primary
 *           body.nonce === nonce ?  --> noteConfirmed(status, seq)  (monotonic clock)
 */
export function newStateNonce(): string {
  return randomBytes(18).toString('base64url');
}

export interface StateAnswer {
  /** The exact body bytes received (the signature covers them). */
  body: Buffer;
  /** The SIGNATURE_HEADER value, if any. */
  signature: unknown;
}

export interface VerifyStateOptions {
  /** The nonce this request carried. */
  nonce: string;
  keys: readonly PublicKeyInfo[];
  /** Wall clock, only for key expiry (`notAfter`). */
  nowMs: number;
}

/**
 * Parses and verifies a state answer to the challenge `nonce`. Throws
 * METASYNC_ERR_SIGNATURE_INVALID / _UNKNOWN_KEY for a bad or missing
 * signature, METASYNC_ERR_SYNC_PROTOCOL for a malformed body, and
 * METASYNC_ERR_SYNC_CHALLENGE_FAILED when the signed body does not carry this
 * request's nonce (a replayed or recorded state).
 */
export function verifyStateAnswer(answer: StateAnswer, options: VerifyStateOptions): StateResponse {
  verifyBody(answer.body, typeof answer.signature === 'string' ? answer.signature : undefined, {
    keys: options.keys,
    nowMs: options.nowMs,
    what: 'state',
  });
  const state = parseState(answer.body);
  if (state.nonce !== options.nonce) {
    throw metasyncError(
      'METASYNC_ERR_SYNC_CHALLENGE_FAILED',
      state.nonce === undefined
        ? `signed state at seq ${state.seq} carries no nonce; expected ${options.nonce} (a primary without the freshness challenge, or a replayed answer)`
        : `signed state at seq ${state.seq} answers nonce ${state.nonce}, not ${options.nonce} (a replayed answer)`,
      { expected: options.nonce, got: state.nonce ?? null, seq: state.seq },
    );
  }
  return state;
}

/** Parses a state body without trusting it (used for the keys offered on first use). */
export function parseState(body: Buffer): StateResponse {
  return parseSyncDocument(body, stateResponseSchema, 'state');
}
