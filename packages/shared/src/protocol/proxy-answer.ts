import { HEADERS } from './routes.js';
import { isRepoPath } from './repo-path.js';
import { signBody, type SigningKey } from './signing.js';

/**
 * The primary's vouching for one repository answer, so a mirror's proxy
 * fallback serves only bytes the primary published (docs/protocol.md,
 * "Signed repository answers"). The primary signs, per answer:
 *
 *   metasync-proxy-answer-v1\n<path>\n<sha256>\n<seq>\n<mtime>
 *
 *   path    the repository path answered (no leading slash; never holds `\n`)
 *   sha256  of the exact identity-encoded body bytes (the object's address)
 *   seq     the generation answered from (its head when it answered)
 *   mtime   the path's Last-Modified in ms, so a mirror can send it as exact as its own answers
 *
 * The prefix keeps this message apart from every other signed thing: signed
 * documents are JSON bytes starting with `{`, so neither can pass for the other.
 * The fields travel in headers beside the body (PROXY_ANSWER_HEADERS) and the
 * signature in HEADERS.signature (`<keyId>.<base64url>`, as for documents).
 */
export const PROXY_ANSWER_PREFIX = 'metasync-proxy-answer-v1\n';

export interface ProxyAnswerFields {
  path: string;
  sha256: string;
  seq: number;
  mtime: number;
}

/** The header of each signed field; the signature itself is HEADERS.signature. */
export const PROXY_ANSWER_HEADERS = {
  path: HEADERS.path,
  sha256: HEADERS.sha256,
  seq: HEADERS.seq,
  mtime: HEADERS.mtime,
} as const;

const SHA256_HEX = /^[0-9a-f]{64}$/;
const DECIMAL = /^(0|[1-9][0-9]{0,15})$/;

/** The exact bytes signed for an answer. */
export function proxyAnswerMessage(fields: ProxyAnswerFields): Buffer {
  return Buffer.from(`${PROXY_ANSWER_PREFIX}${fields.path}\n${fields.sha256}\n${fields.seq}\n${fields.mtime}`, 'utf8');
}

/** Returns the HEADERS.signature value vouching for `fields`. */
export function signProxyAnswer(key: SigningKey, fields: ProxyAnswerFields): string {
  return signBody(key, proxyAnswerMessage(fields));
}

/**
 * Reads the signed fields and the signature from response headers; undefined
 * when one is missing, repeated or not in its exact form (nothing is coerced,
 * so what is verified is what was sent).
 */
export function readProxyAnswerHeaders(
  headers: Readonly<Record<string, unknown>>,
): (ProxyAnswerFields & { signature: string }) | undefined {
  const path = headers[PROXY_ANSWER_HEADERS.path];
  const sha256 = headers[PROXY_ANSWER_HEADERS.sha256];
  const seq = headers[PROXY_ANSWER_HEADERS.seq];
  const mtime = headers[PROXY_ANSWER_HEADERS.mtime];
  const signature = headers[HEADERS.signature];
  if (typeof path !== 'string' || !isRepoPath(path)) return undefined;
  if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) return undefined;
  if (typeof seq !== 'string' || !DECIMAL.test(seq)) return undefined;
  if (typeof mtime !== 'string' || !DECIMAL.test(mtime)) return undefined;
  if (typeof signature !== 'string') return undefined;
  return { path, sha256, seq: Number(seq), mtime: Number(mtime), signature };
}
