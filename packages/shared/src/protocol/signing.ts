import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { sha256Hex } from './content-address.js';
import { metasyncError } from '../errors.js';
import type { PublicKeyInfo } from './documents.js';

export interface SigningKey {
  keyId: string;
  privateKey: KeyObject;
  /** Raw public key, base64url. */
  publicKey: string;
}

export function generateSigningKeyPem(): string {
  const { privateKey } = generateKeyPairSync('ed25519');
  return privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

export function signingKeyFromPem(pem: string): SigningKey {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `signing key must be Ed25519, got ${privateKey.asymmetricKeyType ?? 'unknown'}`);
  }
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  const publicKey = jwk.x as string;
  return { keyId: keyIdOf(publicKey), privateKey, publicKey };
}

/** A short stable id: the first 16 hex of sha256 over the raw public key. */
export function keyIdOf(publicKeyB64url: string): string {
  return sha256Hex(Buffer.from(publicKeyB64url, 'base64url')).slice(0, 16);
}

/** Returns the SIGNATURE_HEADER value for `body`. */
export function signBody(key: SigningKey, body: Uint8Array): string {
  return `${key.keyId}.${sign(null, body, key.privateKey).toString('base64url')}`;
}

export interface VerifyOptions {
  /** Keys the mirror trusts, as pinned or learned. */
  keys: readonly PublicKeyInfo[];
  /** The verifier's clock, ms; keys past `notAfter` are refused. */
  nowMs: number;
  /** Named in errors. */
  what: string;
}

/**
 * Checks `header` (`<keyId>.<sig>`) against `body`. Throws
 * METASYNC_ERR_SIGNATURE_UNKNOWN_KEY or METASYNC_ERR_SIGNATURE_INVALID.
 */
export function verifyBody(body: Uint8Array, header: string | undefined, options: VerifyOptions): PublicKeyInfo {
  if (header === undefined || !/^[0-9a-f]{16}\.[A-Za-z0-9_-]{86}$/.test(header)) {
    throw metasyncError('METASYNC_ERR_SIGNATURE_INVALID', `${options.what} has no well-formed signature header`, {
      what: options.what,
      got: header?.slice(0, 120) ?? null,
    });
  }
  const [keyId, signature] = header.split('.') as [string, string];
  const key = options.keys.find((candidate) => candidate.keyId === keyId);
  if (key === undefined) {
    throw metasyncError('METASYNC_ERR_SIGNATURE_UNKNOWN_KEY', `${options.what} is signed by key ${keyId}, which is not trusted`, {
      what: options.what,
      keyId,
      trusted: options.keys.map((k) => k.keyId),
    });
  }
  if (key.notAfter !== undefined && options.nowMs > key.notAfter) {
    throw metasyncError(
      'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY',
      `${options.what} is signed by key ${keyId}, retired since ${new Date(key.notAfter).toISOString()}`,
      {
        what: options.what,
        keyId,
        notAfter: key.notAfter,
      },
    );
  }
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key.publicKey }, format: 'jwk' });
  if (!verify(null, body, publicKey, Buffer.from(signature, 'base64url'))) {
    throw metasyncError('METASYNC_ERR_SIGNATURE_INVALID', `${options.what} signature by key ${keyId} does not verify`, {
      what: options.what,
      keyId,
    });
  }
  return key;
}
