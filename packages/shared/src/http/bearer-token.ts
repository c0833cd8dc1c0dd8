/**
 * `Authorization: Bearer <token>` for the daemons' authenticated routes (the
 * primary's publish and admin API, the mirror's admin drain). Each caller keeps
 * its own policy: which tokens exist and what they may do (`verify`). This file
 * owns the header syntax, the two 401 codes and a constant-time comparison.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { metasyncError, type MetasyncError } from '../errors.js';

export interface BearerWording {
  /** How the AUTH_MISSING message names the token: `needs Authorization: Bearer <${tokenName}>`. */
  tokenName: string;
  /** Appended to the AUTH_INVALID message, e.g. ` (unknown or revoked)`; empty when there is nothing to add. */
  invalidDetail: string;
}

export type BearerOutcome<T> = { ok: true; caller: T } | { ok: false; error: MetasyncError };

const BEARER = /^Bearer +(\S+) *$/i;

/**
 * Reads the bearer token and hands it to `verify`, which answers who the caller is
 * (undefined: not a valid token). Never throws: the caller decides when to refuse,
 * so it can rate limit by the outcome first.
 *
 *   no header / empty          -> METASYNC_ERR_AUTH_MISSING
 *   not `Bearer <token>`       -> METASYNC_ERR_AUTH_INVALID
 *   verify(token) undefined    -> METASYNC_ERR_AUTH_INVALID
 */
export function verifyBearer<T>(
  request: FastifyRequest,
  verify: (token: string) => T | undefined,
  wording: BearerWording,
): BearerOutcome<T> {
  const header = request.headers.authorization;
  if (header === undefined || header === '') {
    return {
      ok: false,
      error: metasyncError(
        'METASYNC_ERR_AUTH_MISSING',
        `${request.method} ${request.url} needs Authorization: Bearer <${wording.tokenName}>`,
        { field: 'authorization', rule: 'bearer-token' },
      ),
    };
  }
  const token = BEARER.exec(header)?.[1];
  const caller = token === undefined ? undefined : verify(token);
  if (caller !== undefined) return { ok: true, caller };
  return {
    ok: false,
    error: metasyncError(
      'METASYNC_ERR_AUTH_INVALID',
      `${request.method} ${request.url}: the bearer token is not valid${wording.invalidDetail}`,
      { field: 'authorization', rule: 'bearer-token' },
    ),
  };
}

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Constant-time check of a presented token against a configured one. Both are
 * compared as sha256 digests with `timingSafeEqual`, so neither the time taken nor
 * a length mismatch leaks how much of the token matched.
 */
export function createTokenCheck(token: string): (presented: string) => boolean {
  const expected = digest(token);
  return (presented) => timingSafeEqual(digest(presented), expected);
}
