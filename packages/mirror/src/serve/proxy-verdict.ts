import {
  isMetasyncError,
  proxyAnswerMessage,
  readProxyAnswerHeaders,
  sha256Hex,
  verifyBody,
  type MetasyncError,
  type ProxyAnswerFields,
  type PublicKeyInfo,
} from '@metasync/shared';

/**
 * Whether a proxied answer may reach a client: pure, from what came over the
 * wire and what the mirror trusts (docs/protocol.md, "Signed repository answers").
 *
 *   signed fields and signature present and well-formed   else 'unsigned'
 *   signed path == the path the client asked for          else 'wrong-path'  (another path's answer)
 *   signature by a trusted, unexpired key                  else 'unknown-key' / 'bad-signature'
 *   signed seq >= the mirror's applied seq                 else 'stale'       (an older answer replayed)
 *   sha256(body) == signed sha256                          else 'hash-mismatch'
 *
 * The body is the identity-encoded bytes (the caller decoded any transfer
 * encoding). Nothing else of the answer is trusted: its status line, ETag,
 * Content-Type and cache headers are the hop's to change, so the mirror
 * builds its own from the verified fields.
 */
export const PROXY_REFUSAL_REASONS = [
  'unsigned',
  'wrong-path',
  'unknown-key',
  'bad-signature',
  'stale',
  'hash-mismatch',
  /** Decided by the proxy before a verdict: body over --proxy-max-body-bytes. */
  'too-large',
  /** A content-encoding the mirror cannot (or could not) decode. */
  'encoding',
  /** Nothing pinned yet (trust on first use before the first sync): nothing can verify. */
  'no-trusted-key',
] as const;

export type ProxyRefusalReason = (typeof PROXY_REFUSAL_REASONS)[number];

export interface ProxyAnswerInput {
  /** The repository path the client asked for. */
  path: string;
  headers: Readonly<Record<string, unknown>>;
  /** Identity-encoded body bytes. */
  body: Uint8Array;
  keys: readonly PublicKeyInfo[];
  /** The mirror's applied seq when the client asked. */
  appliedSeq: number;
  /** For keys' notAfter. */
  nowMs: number;
}

export type ProxyVerdict =
  | { ok: true; signed: ProxyAnswerFields; keyId: string }
  | { ok: false; reason: ProxyRefusalReason; message: string; error?: MetasyncError };

export function judgeProxyAnswer(input: ProxyAnswerInput): ProxyVerdict {
  const signed = readProxyAnswerHeaders(input.headers);
  if (signed === undefined) return refuse('unsigned', `answer for ${input.path} carries no well-formed signed fields`);
  if (signed.path !== input.path) return refuse('wrong-path', `answer for ${input.path} is signed for ${signed.path}`);
  let keyId: string;
  try {
    keyId = verifyBody(proxyAnswerMessage(signed), signed.signature, {
      keys: input.keys,
      nowMs: input.nowMs,
      what: `answer for ${input.path}`,
    }).keyId;
  } catch (err) {
    if (isMetasyncError(err, 'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY')) return refuse('unknown-key', err.message, err);
    if (isMetasyncError(err, 'METASYNC_ERR_SIGNATURE_INVALID')) return refuse('bad-signature', err.message, err);
    throw err;
  }
  if (signed.seq < input.appliedSeq)
    return refuse('stale', `answer for ${input.path} is signed at seq ${signed.seq}, older than the applied seq ${input.appliedSeq}`);
  const actual = sha256Hex(input.body);
  if (actual !== signed.sha256) return refuse('hash-mismatch', `answer for ${input.path} hashes to ${actual}, signed for ${signed.sha256}`);
  const { signature: _signature, ...fields } = signed;
  return { ok: true, signed: fields, keyId };
}

function refuse(reason: ProxyRefusalReason, message: string, error?: MetasyncError): ProxyVerdict {
  return error === undefined ? { ok: false, reason, message } : { ok: false, reason, message, error };
}
