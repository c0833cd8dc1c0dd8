import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateSigningKeyPem, signBody, signingKeyFromPem } from './signing.js';
import { checkSnapshotHead, encodeSnapshotStatement, signSnapshotStatement, verifySnapshotBody } from './snapshot-statement.js';

describe('snapshot statements', () => {
  const key = signingKeyFromPem(generateSigningKeyPem());
  const options = { keys: [{ keyId: key.keyId, publicKey: key.publicKey, active: true }], nowMs: Date.now(), what: 'snapshot' };
  const body = Buffer.from('{"kind":"snapshot","seq":5,"time":9,"entries":[\n]}');
  const sha256 = createHash('sha256').update(body).digest('hex');
  const signed = signSnapshotStatement(key, { seq: 5, time: 9, length: body.length, sha256 });
  const invalid = expect.objectContaining({ code: 'METASYNC_ERR_SIGNATURE_INVALID' });

  it('verifies a body through its signed statement and returns the statement', () => {
    expect(verifySnapshotBody(body, signed, options)).toEqual({ kind: 'snapshot-statement', seq: 5, time: 9, length: body.length, sha256 });
  });

  it('refuses a body with one byte changed, or cut, under a valid statement', () => {
    const changed = Buffer.from(body);
    changed[changed.length - 3] = 0x20;
    expect(() => verifySnapshotBody(changed, signed, options)).toThrow(invalid);
    expect(() => verifySnapshotBody(changed, signed, options)).toThrow(/does not hash to its signed statement/);
    expect(() => verifySnapshotBody(body.subarray(1), signed, options)).toThrow(/its signed statement says/);
  });

  it('refuses a statement changed after signing, one signed by another key, and a garbled header', () => {
    const forged = encodeSnapshotStatement({ seq: 6, time: 9, length: body.length, sha256 }).toString('base64url');
    expect(() => verifySnapshotBody(body, { ...signed, statement: forged }, options)).toThrow(invalid);
    const other = signingKeyFromPem(generateSigningKeyPem());
    expect(() => verifySnapshotBody(body, signSnapshotStatement(other, { seq: 5, time: 9, length: body.length, sha256 }), options)).toThrow(
      expect.objectContaining({ code: 'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY' }),
    );
    expect(() => verifySnapshotBody(body, { ...signed, statement: 'not base64url!' }, options)).toThrow(/malformed statement header/);
    expect(() => verifySnapshotBody(body, { ...signed, statement: 'A'.repeat(5000) }, options)).toThrow(/malformed statement header/);
    expect(() => verifySnapshotBody(body, { signature: undefined, statement: signed.statement }, options)).toThrow(invalid);
  });

  it('refuses another signed document offered as a statement (a changes batch is no statement of a body)', () => {
    const batch = Buffer.from('{"kind":"changes","from":1,"to":2,"head":2,"entries":[]}');
    const offered = { statement: batch.toString('base64url'), signature: signBody(key, batch) };
    expect(() => verifySnapshotBody(body, offered, options)).toThrow(/not a snapshot statement/);
  });

  it('verifies the older form, a signature over the body itself, when no statement comes', () => {
    expect(verifySnapshotBody(body, { signature: signBody(key, body), statement: undefined }, options)).toBeUndefined();
    expect(() => verifySnapshotBody(body, { signature: signed.signature, statement: undefined }, options)).toThrow(invalid);
  });

  it('checks the parsed head against the statement', () => {
    const statement = verifySnapshotBody(body, signed, options);
    expect(() => checkSnapshotHead({ seq: 5, time: 9 }, statement, 'snapshot')).not.toThrow();
    expect(() => checkSnapshotHead({ seq: 4, time: 9 }, statement, 'snapshot')).toThrow(/its signed statement names seq 5/);
    expect(() => checkSnapshotHead({ seq: 5, time: 8 }, statement, 'snapshot')).toThrow(invalid);
    expect(() => checkSnapshotHead({ seq: 4, time: 8 }, undefined, 'snapshot')).not.toThrow();
  });
});
