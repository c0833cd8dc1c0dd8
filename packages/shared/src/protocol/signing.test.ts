import { describe, expect, it } from 'vitest';
import { generateSigningKeyPem, signBody, signingKeyFromPem, verifyBody } from './signing.js';

describe('signing', () => {
  const key = signingKeyFromPem(generateSigningKeyPem());
  const trusted = [{ keyId: key.keyId, publicKey: key.publicKey, active: true }];
  const body = Buffer.from('{"kind":"changes","from":1,"to":2}');

  it('verifies a body signed by a trusted key', () => {
    expect(verifyBody(body, signBody(key, body), { keys: trusted, nowMs: Date.now(), what: 'batch' }).keyId).toBe(key.keyId);
  });

  it('rejects a body changed after signing', () => {
    const header = signBody(key, body);
    const forged = Buffer.from('{"kind":"changes","from":1,"to":3}');
    expect(() => verifyBody(forged, header, { keys: trusted, nowMs: Date.now(), what: 'batch' })).toThrow(
      expect.objectContaining({ code: 'METASYNC_ERR_SIGNATURE_INVALID' }),
    );
  });

  it('rejects a signature by a key the verifier does not trust', () => {
    const other = signingKeyFromPem(generateSigningKeyPem());
    expect(() => verifyBody(body, signBody(other, body), { keys: trusted, nowMs: Date.now(), what: 'batch' })).toThrow(
      expect.objectContaining({ code: 'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY' }),
    );
  });

  it('rejects a missing or malformed header', () => {
    expect(() => verifyBody(body, undefined, { keys: trusted, nowMs: 0, what: 'batch' })).toThrow(/no well-formed signature/);
    expect(() => verifyBody(body, 'zz.yy', { keys: trusted, nowMs: 0, what: 'batch' })).toThrow(/no well-formed signature/);
  });

  it('refuses a key past its notAfter', () => {
    const retired = [{ ...trusted[0]!, active: false, notAfter: 1000 }];
    expect(() => verifyBody(body, signBody(key, body), { keys: retired, nowMs: 2000, what: 'batch' })).toThrow(/retired/);
  });
});
