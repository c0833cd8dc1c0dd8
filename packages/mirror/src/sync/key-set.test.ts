import { generateSigningKeyPem, signingKeyFromPem, type KeySet, type PublicKeyInfo } from '@metasync/shared';
import { describe, expect, it } from 'vitest';
import { MAX_TRUSTED_KEYS, knowsKey, mergeKeySet, usableKeys, type TrustedKeys } from './key-set.js';

function newKey(): PublicKeyInfo {
  const key = signingKeyFromPem(generateSigningKeyPem());
  return { keyId: key.keyId, publicKey: key.publicKey, active: true };
}

const keySet = (version: number, keys: PublicKeyInfo[]): KeySet => ({ kind: 'keys', version, issuedAt: 1_000, keys });

describe('mergeKeySet', () => {
  const a = newKey();
  const b = newKey();
  const c = newKey();

  it('adds the rotated-in key and takes the old key’s retirement time', () => {
    const { trusted, added } = mergeKeySet(
      { version: 0, keys: [a], anchor: a.keyId },
      keySet(1, [b, { ...a, active: false, notAfter: 5_000 }]),
      1_000,
    );
    expect(added).toEqual([b.keyId]);
    expect(trusted).toEqual({ version: 1, anchor: a.keyId, keys: [b, { ...a, active: false, notAfter: 5_000 }] });
  });

  it('refuses a key set older than the one already trusted (a replay)', () => {
    expect(() => mergeKeySet({ version: 2, keys: [b] }, keySet(1, [a, b]), 1_000)).toThrow(
      expect.objectContaining({ code: 'METASYNC_ERR_SYNC_ROLLBACK' }),
    );
  });

  it('never extends a retirement: a known key keeps the earliest notAfter it was given', () => {
    const current: TrustedKeys = { version: 1, keys: [b, { ...a, active: false, notAfter: 5_000 }] };
    const { trusted } = mergeKeySet(current, keySet(1, [b, a]), 1_000);
    expect(trusted.keys.find((k) => k.keyId === a.keyId)).toEqual({ ...a, active: false, notAfter: 5_000 });
  });

  it('retires at once a key that a newer set leaves out, and keeps it listed so it stays refused', () => {
    const { trusted } = mergeKeySet({ version: 1, keys: [b, a] }, keySet(2, [c, { ...b, active: false, notAfter: 9_000 }]), 4_000);
    expect(trusted.keys).toContainEqual({ ...a, active: false, notAfter: 4_000 });
    expect(knowsKey(trusted, a.keyId)).toBe(true);
    expect(usableKeys(trusted, 4_001).map((k) => k.keyId)).toEqual([c.keyId, b.keyId]);
  });

  it('refuses a set whose key id does not match its public key, that swaps the public key of a known id, or lists an id twice', () => {
    expect(() => mergeKeySet({ version: 0, keys: [a] }, keySet(1, [{ ...b, keyId: c.keyId }]), 0)).toThrow(
      expect.objectContaining({ code: 'METASYNC_ERR_SYNC_PROTOCOL' }),
    );
    expect(() => mergeKeySet({ version: 0, keys: [a] }, keySet(1, [{ ...a, publicKey: b.publicKey }]), 0)).toThrow(
      expect.objectContaining({ code: 'METASYNC_ERR_SYNC_PROTOCOL' }),
    );
    expect(() => mergeKeySet({ version: 0, keys: [a] }, keySet(1, [b, { ...b, active: false, notAfter: 5 }]), 0)).toThrow(
      expect.objectContaining({ code: 'METASYNC_ERR_SYNC_PROTOCOL' }),
    );
  });

  it(`keeps at most ${MAX_TRUSTED_KEYS} keys, dropping the longest-retired first but never the pinned anchor`, () => {
    const retired = Array.from({ length: MAX_TRUSTED_KEYS + 3 }, (_, i) => ({ ...newKey(), active: false, notAfter: 100 + i }));
    const anchor = retired[0] as PublicKeyInfo;
    const active = newKey();
    const { trusted } = mergeKeySet({ version: 0, keys: retired, anchor: anchor.keyId }, keySet(1, [active, ...retired]), 50);
    expect(trusted.keys).toHaveLength(MAX_TRUSTED_KEYS);
    expect(knowsKey(trusted, anchor.keyId)).toBe(true);
    expect(knowsKey(trusted, active.keyId)).toBe(true);
    expect(knowsKey(trusted, (retired[1] as PublicKeyInfo).keyId)).toBe(false);
    expect(knowsKey(trusted, (retired.at(-1) as PublicKeyInfo).keyId)).toBe(true);
  });
});
