import { metasyncError, type MetasyncError } from './errors.js';

/**
 * Telling a failed TLS handshake from other connection failures, for clients
 * of an https:// daemon (the mirror's sync, push stream and proxy; the
 * operator CLI). A certificate the client does not trust is an operator's
 * mistake with one fix (the right CA file), so it gets its own code and a
 * message naming that fix, instead of a generic "unreachable".
 *
 * OpenSSL verification codes (UNABLE_TO_VERIFY_LEAF_SIGNATURE,
 * SELF_SIGNED_CERT_IN_CHAIN, CERT_HAS_EXPIRED...), Node's ERR_TLS_* (a name
 * mismatch: ERR_TLS_CERT_ALTNAME_INVALID) and ERR_SSL_* (the port does not speak
 * TLS: ERR_SSL_WRONG_VERSION_NUMBER). undici passes them through; fetch wraps
 * them in `cause`.
 */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_)|CERT|^UNABLE_TO_|^EPROTO$/;

/** The TLS error code in `err` or its causes, if the failure was the TLS handshake. */
export function tlsFailureCode(err: unknown): string | undefined {
  return findTlsError(err)?.code;
}

function findTlsError(err: unknown): { code: string; message: string } | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && TLS_CODE.test(code)) return { code, message: String((current as { message?: unknown }).message) };
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** METASYNC_ERR_TLS_HANDSHAKE for a TLS failure reaching `url` (undefined for any other error); `hint` names the CA option. */
export function tlsHandshakeError(err: unknown, url: string, hint: string): MetasyncError | undefined {
  const found = findTlsError(err);
  if (found === undefined) return undefined;
  return metasyncError(
    'METASYNC_ERR_TLS_HANDSHAKE',
    `TLS handshake with ${url} failed (${found.code}: ${found.message}); ${hint}`,
    { url, tlsCode: found.code },
    err,
  );
}
