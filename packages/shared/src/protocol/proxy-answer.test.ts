import { describe, expect, it } from 'vitest';
import { PROXY_ANSWER_PREFIX, proxyAnswerMessage, readProxyAnswerHeaders, signProxyAnswer } from './proxy-answer.js';
import { HEADERS } from './routes.js';
import { generateSigningKeyPem, signBody, signingKeyFromPem, verifyBody } from './signing.js';

const key = signingKeyFromPem(generateSigningKeyPem());
const trusted = [{ keyId: key.keyId, publicKey: key.publicKey, active: true }];
const fields = { path: 'p2/acme/foo.json', sha256: 'ab'.repeat(32), seq: 42, mtime: 1795313379708 };

function headersOf(signature: string): Record<string, string> {
  return {
    [HEADERS.path]: fields.path,
    [HEADERS.sha256]: fields.sha256,
    [HEADERS.seq]: String(fields.seq),
    [HEADERS.mtime]: String(fields.mtime),
    [HEADERS.signature]: signature,
  };
}

describe('proxy answer signatures', () => {
  it('signs the prefixed, newline-joined fields', () => {
    expect(proxyAnswerMessage(fields).toString()).toBe(`${PROXY_ANSWER_PREFIX}p2/acme/foo.json\n${'ab'.repeat(32)}\n42\n1795313379708`);
    const signature = signProxyAnswer(key, fields);
    expect(verifyBody(proxyAnswerMessage(fields), signature, { keys: trusted, nowMs: 0, what: 'answer' }).keyId).toBe(key.keyId);
  });

  it('gives each field its own signature (another path, hash, seq or mtime does not verify)', () => {
    const signature = signProxyAnswer(key, fields);
    for (const changed of [
      { ...fields, path: 'p2/acme/bar.json' },
      { ...fields, sha256: 'cd'.repeat(32) },
      { ...fields, seq: 43 },
      { ...fields, mtime: fields.mtime + 1 },
    ]) {
      expect(() => verifyBody(proxyAnswerMessage(changed), signature, { keys: trusted, nowMs: 0, what: 'answer' })).toThrow(
        expect.objectContaining({ code: 'METASYNC_ERR_SIGNATURE_INVALID' }),
      );
    }
  });

  it('cannot be confused with a signed document: a document signature does not verify as an answer', () => {
    const document = Buffer.from(JSON.stringify({ kind: 'state', seq: 42 }));
    expect(() => verifyBody(proxyAnswerMessage(fields), signBody(key, document), { keys: trusted, nowMs: 0, what: 'answer' })).toThrow(
      expect.objectContaining({ code: 'METASYNC_ERR_SIGNATURE_INVALID' }),
    );
  });

  it('reads the fields back from headers exactly as sent', () => {
    const signature = signProxyAnswer(key, fields);
    expect(readProxyAnswerHeaders(headersOf(signature))).toEqual({ ...fields, signature });
  });

  it.each([
    [HEADERS.path, undefined],
    [HEADERS.path, '../etc/passwd'],
    [HEADERS.sha256, 'AB'.repeat(32)],
    [HEADERS.seq, '042'],
    [HEADERS.seq, '1e3'],
    [HEADERS.mtime, '-1'],
    [HEADERS.signature, undefined],
    [HEADERS.seq, ['1', '2']],
  ])('reads nothing when %s is %j', (name, value) => {
    const headers: Record<string, unknown> = headersOf(signProxyAnswer(key, fields));
    if (value === undefined) delete headers[name];
    else headers[name] = value;
    expect(readProxyAnswerHeaders(headers)).toBeUndefined();
  });
});
