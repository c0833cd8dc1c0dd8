import { describe, expect, it } from 'vitest';
import { generateSigningKeyPem, isMetasyncError, signBody, signingKeyFromPem, type ErrorCode } from '@metasync/shared';
import { newStateNonce, verifyStateAnswer } from './state-challenge.js';

const key = signingKeyFromPem(generateSigningKeyPem());
const keys = [{ keyId: key.keyId, publicKey: key.publicKey, active: true }];

/** What a primary answers to `state?nonce=<nonce>` (nonce undefined: a primary without the challenge). */
function answer(nonce: string | undefined, seq = 12, signer = key): { body: Buffer; signature: string } {
  const body = Buffer.from(
    JSON.stringify({ protocol: 1, ...(nonce === undefined ? {} : { nonce }), seq, time: 1, oldestSeq: 0, snapshotSeq: 0, keys }),
  );
  return { body, signature: signBody(signer, body) };
}

function codeOf(run: () => unknown): ErrorCode | undefined {
  try {
    run();
  } catch (err) {
    if (isMetasyncError(err)) return err.code;
    throw err;
  }
  return undefined;
}

describe('state challenge', () => {
  it('draws a fresh well-formed nonce each time', () => {
    const nonces = new Set(Array.from({ length: 100 }, () => newStateNonce()));
    expect(nonces.size).toBe(100);
    for (const nonce of nonces) expect(nonce).toMatch(/^[A-Za-z0-9_-]{24}$/);
  });

  it('accepts a signed state that echoes this request nonce', () => {
    const nonce = newStateNonce();
    expect(verifyStateAnswer(answer(nonce), { nonce, keys, nowMs: 0 })).toMatchObject({ seq: 12, nonce });
  });

  it('refuses a signed state answering another nonce (wrong nonce)', () => {
    expect(codeOf(() => verifyStateAnswer(answer(newStateNonce()), { nonce: newStateNonce(), keys, nowMs: 0 }))).toBe(
      'METASYNC_ERR_SYNC_CHALLENGE_FAILED',
    );
  });

  it('refuses a recorded signed state replayed to a later challenge', () => {
    const first = newStateNonce();
    const recorded = answer(first, 40);
    expect(verifyStateAnswer(recorded, { nonce: first, keys, nowMs: 0 }).seq).toBe(40);
    const later = newStateNonce();
    expect(() => verifyStateAnswer(recorded, { nonce: later, keys, nowMs: 0 })).toThrow(/answers nonce .* not .*replayed/);
  });

  it('refuses a signed state without a nonce (a primary without the challenge)', () => {
    expect(codeOf(() => verifyStateAnswer(answer(undefined), { nonce: newStateNonce(), keys, nowMs: 0 }))).toBe(
      'METASYNC_ERR_SYNC_CHALLENGE_FAILED',
    );
  });

  it('refuses a state whose bytes were altered after signing (the nonce spliced in)', () => {
    const nonce = newStateNonce();
    const recorded = answer(newStateNonce());
    const spliced = Buffer.from(recorded.body.toString('utf8').replace(/"nonce":"[^"]+"/, `"nonce":"${nonce}"`));
    expect(codeOf(() => verifyStateAnswer({ body: spliced, signature: recorded.signature }, { nonce, keys, nowMs: 0 }))).toBe(
      'METASYNC_ERR_SIGNATURE_INVALID',
    );
  });

  it('refuses an unsigned state and one signed by an untrusted key', () => {
    const nonce = newStateNonce();
    expect(codeOf(() => verifyStateAnswer({ body: answer(nonce).body, signature: undefined }, { nonce, keys, nowMs: 0 }))).toBe(
      'METASYNC_ERR_SIGNATURE_INVALID',
    );
    const impostor = signingKeyFromPem(generateSigningKeyPem());
    expect(codeOf(() => verifyStateAnswer(answer(nonce, 12, impostor), { nonce, keys, nowMs: 0 }))).toBe(
      'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY',
    );
  });

  it('refuses a signed body that is not a state', () => {
    const nonce = newStateNonce();
    const body = Buffer.from(JSON.stringify({ kind: 'changes', nonce }));
    expect(codeOf(() => verifyStateAnswer({ body, signature: signBody(key, body) }, { nonce, keys, nowMs: 0 }))).toBe(
      'METASYNC_ERR_SYNC_PROTOCOL',
    );
  });
});
