import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { metasyncError } from '@metasync/shared';

/**
 * `--primary-ca`: the CA certificate(s) an https:// primary's certificate must
 * chain to. Given as undici's `connect.ca`, it replaces the system CAs for the
 * primary only (every request: state, changes, objects, push stream, proxy
 * fallback), so a public CA cannot vouch for a host posing as a private primary.
 * Read once at start; a file that is not PEM certificates is a config error
 * here, not a handshake failure at every sync.
 */
export function readPrimaryCa(file: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `metasync-mirror: --primary-ca ${file} cannot be read: ${(err as Error).message}`, {
      path: file,
    });
  }
  try {
    new X509Certificate(pem);
  } catch (err) {
    throw metasyncError(
      'METASYNC_ERR_CONFIG_INVALID',
      `metasync-mirror: --primary-ca ${file} holds no PEM certificate: ${(err as Error).message}`,
      { path: file },
      err,
    );
  }
  return pem;
}

/** undici `connect` options for the primary: the connect timeout, plus the CA when one is pinned. */
export function primaryConnectOptions(connectTimeoutMs: number, ca: Buffer | undefined): { timeout: number; ca?: Buffer } {
  return ca === undefined ? { timeout: connectTimeoutMs } : { timeout: connectTimeoutMs, ca };
}

/** What a mirror operator should check when the primary's certificate is refused. */
export const PRIMARY_TLS_HINT =
  "check --primary-ca (the CA that signed the primary's certificate) and that the --primary host is in the certificate";
