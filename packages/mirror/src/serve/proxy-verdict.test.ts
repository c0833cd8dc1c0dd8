import { describe, expect, it } from 'vitest';
import {
  HEADERS,
  generateSigningKeyPem,
  sha256Hex,
  signBody,
  signProxyAnswer,
  signingKeyFromPem,
  type ProxyAnswerFields,
  type SigningKey,
} from '@metasync/shared';
import { judgeProxyAnswer, type ProxyAnswerInput } from './proxy-verdict.js';

const key = signingKeyFromPem(generateSigningKeyPem());
const stranger = signingKeyFromPem(generateSigningKeyPem());
const keys = [{ keyId: key.keyId, publicKey: key.publicKey, active: true }];
const body = Buffer.from('{"packages":{"acme/foo":[{"version":"1.0.0"}]}}');
const genuine: ProxyAnswerFields = { path: 'p2/acme/foo.json', sha256: sha256Hex(body), seq: 7, mtime: 1_795_313_379_708 };

function headersFor(fields: ProxyAnswerFields, signer: SigningKey = key): Record<string, string> {
  return {
    [HEADERS.path]: fields.path,
    [HEADERS.sha256]: fields.sha256,
    [HEADERS.seq]: String(fields.seq),
    [HEADERS.mtime]: String(fields.mtime),
    [HEADERS.signature]: signProxyAnswer(signer, fields),
    'content-type': 'application/json',
  };
}

function judge(overrides: Partial<ProxyAnswerInput> = {}) {
  return judgeProxyAnswer({ path: genuine.path, headers: headersFor(genuine), body, keys, appliedSeq: 7, nowMs: 0, ...overrides });
}

describe('judgeProxyAnswer', () => {
  it('accepts a genuine answer signed at the applied seq or later, and returns the signed fields', () => {
    expect(judge()).toEqual({ ok: true, signed: genuine, keyId: key.keyId });
    expect(judge({ appliedSeq: 3 }).ok).toBe(true);
  });

  it('refuses an answer with no signed fields (a hop stripped them)', () => {
    const stripped = Object.fromEntries(Object.entries(headersFor(genuine)).filter(([name]) => !name.startsWith('x-metasync-')));
    expect(judge({ headers: stripped })).toMatchObject({ ok: false, reason: 'unsigned' });
    expect(judge({ headers: { ...headersFor(genuine), [HEADERS.signature]: undefined } })).toMatchObject({ ok: false, reason: 'unsigned' });
  });

  it('refuses a forged body that came with its own hash and a signature by an untrusted key', () => {
    const forged = Buffer.from('{"packages":{"acme/foo":[{"version":"6.6.6","dist":{"url":"https://evil.example/x.zip"}}]}}');
    const fields = { ...genuine, sha256: sha256Hex(forged) };
    expect(judge({ body: forged, headers: headersFor(fields, stranger) })).toMatchObject({ ok: false, reason: 'unknown-key' });
    // The genuine key id with a signature that is not the key's.
    const borrowed = { ...headersFor(fields, stranger), [HEADERS.signature]: `${key.keyId}.${'A'.repeat(86)}` };
    expect(judge({ body: forged, headers: borrowed })).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('refuses a forged body under the genuine signed fields', () => {
    expect(judge({ body: Buffer.from('<html>pwned</html>') })).toMatchObject({ ok: false, reason: 'hash-mismatch' });
  });

  it("refuses another path's genuinely signed answer, whether or not the hop relabels the path", () => {
    const other = { ...genuine, path: 'p2/acme/other.json' };
    expect(judge({ headers: headersFor(other) })).toMatchObject({ ok: false, reason: 'wrong-path' });
    const relabelled = { ...headersFor(other), [HEADERS.path]: genuine.path };
    expect(judge({ headers: relabelled })).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('refuses a genuine answer older than the applied seq (a replay), even relabelled with a newer seq', () => {
    expect(judge({ appliedSeq: 8 })).toMatchObject({ ok: false, reason: 'stale' });
    const relabelled = { ...headersFor(genuine), [HEADERS.seq]: '8' };
    expect(judge({ appliedSeq: 8, headers: relabelled })).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('refuses a document signature passed off as an answer signature', () => {
    const document = Buffer.from(JSON.stringify({ kind: 'state', seq: 7 }));
    const headers = { ...headersFor(genuine), [HEADERS.signature]: signBody(key, document) };
    expect(judge({ headers })).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('refuses a key past its notAfter', () => {
    const retired = [{ ...keys[0]!, active: false, notAfter: 1_000 }];
    expect(judge({ keys: retired, nowMs: 2_000 })).toMatchObject({ ok: false, reason: 'unknown-key' });
  });
});
