import { describe, expect, it } from 'vitest';
import { generateSigningKeyPem, proxyAnswerMessage, signingKeyFromPem, verifyBody } from '@metasync/shared';
import { createAnswerSignatures } from './answer-signatures.js';

const key = signingKeyFromPem(generateSigningKeyPem());
const keys = [{ keyId: key.keyId, publicKey: key.publicKey, active: true }];
const fields = (path: string, seq = 1) => ({ path, sha256: 'ab'.repeat(32), seq, mtime: 1_000 });

describe('answer signatures', () => {
  it('signs each (path, sha256, seq, mtime) once and reuses it', () => {
    const signatures = createAnswerSignatures();
    const first = signatures.signatureFor(key, fields('p2/a/b.json'));
    expect(signatures.signatureFor(key, fields('p2/a/b.json'))).toBe(first);
    expect(signatures.signed()).toBe(1);
    expect(verifyBody(proxyAnswerMessage(fields('p2/a/b.json')), first, { keys, nowMs: 0, what: 'answer' }).keyId).toBe(key.keyId);
    signatures.signatureFor(key, fields('p2/a/b.json', 2));
    expect(signatures.signed()).toBe(2);
  });

  it('holds at most two generations of entries', () => {
    const signatures = createAnswerSignatures({ maxEntries: 2 });
    for (const path of ['p2/a/1.json', 'p2/a/2.json', 'p2/a/3.json', 'p2/a/4.json', 'p2/a/5.json'])
      signatures.signatureFor(key, fields(path));
    expect(signatures.signed()).toBe(5);
    // 4 and 5 are still held (the generation holding 1 and 2 was dropped when 5 arrived)...
    signatures.signatureFor(key, fields('p2/a/4.json'));
    expect(signatures.signed()).toBe(5);
    // ...1 is not.
    signatures.signatureFor(key, fields('p2/a/1.json'));
    expect(signatures.signed()).toBe(6);
  });
});
