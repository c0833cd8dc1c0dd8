/**
 * Bearer-token authentication shared by the publish API and the admin routes.
 *
 *   identify (onRequest, never answers)  ->  rate limit keyed by its result  ->  requireToken (preParsing: 401)
 *   -> handler: requireVendor / requireAdmin (403 METASYNC_ERR_AUTH_SCOPE naming the token id)
 *
 * Identifying first and refusing later lets the limiter key valid tokens by id and
 * everything else by client address, and the refusal still comes before the body is read.
 */
import { metasyncError, type MetasyncError } from '@metasync/shared';
import type { FastifyRequest } from 'fastify';
import type { PublishAuth } from '../publish/auth.js';
import { vendorAllowed, type TokenIdentity } from '../publish/tokens.js';
import { clientAddressKey } from './rate-limits.js';

type Outcome = { identity: TokenIdentity } | { error: MetasyncError };

const outcomes = new WeakMap<FastifyRequest, Outcome>();

function resolve(auth: PublishAuth, request: FastifyRequest): Outcome {
  const header = request.headers.authorization;
  if (header === undefined || header === '') {
    return { error: metasyncError('METASYNC_ERR_AUTH_MISSING', `${request.method} ${request.url} needs Authorization: Bearer <token>`, { field: 'authorization', rule: 'bearer-token' }) };
  }
  const match = /^Bearer +(\S+) *$/i.exec(header);
  const result = match?.[1] === undefined ? undefined : auth.match(match[1]);
  if (result?.ok === true) return { identity: result.identity };
  if (result?.revokedId !== undefined) request.log.info({ tokenId: result.revokedId, url: request.url }, 'revoked publish token refused');
  return {
    error: metasyncError('METASYNC_ERR_AUTH_INVALID', `${request.method} ${request.url}: the bearer token is not valid (unknown or revoked)`, { field: 'authorization', rule: 'bearer-token' }),
  };
}

/** onRequest: works out who is calling, without answering. */
export function identifyHook(auth: PublishAuth) {
  return async (request: FastifyRequest): Promise<void> => {
    outcomes.set(request, resolve(auth, request));
  };
}

/** The rate-limit key: `token:<id>` for a valid token, else the client address. */
export function callerKey(request: FastifyRequest): string {
  const outcome = outcomes.get(request);
  return outcome !== undefined && 'identity' in outcome ? `token:${outcome.identity.id}` : clientAddressKey(request);
}

/** preParsing (or first thing in a handler): 401 unless the token is valid. */
export function requireToken(request: FastifyRequest): TokenIdentity {
  const outcome = outcomes.get(request);
  if (outcome === undefined) throw new Error(`requireToken: ${request.url} was not identified (identifyHook missing)`);
  if ('error' in outcome) throw outcome.error;
  return outcome.identity;
}

/** 403 unless the caller's token may publish `packageName`'s vendor. */
export function requireVendor(request: FastifyRequest, packageName: string): void {
  const identity = requireToken(request);
  const vendor = packageName.slice(0, packageName.indexOf('/'));
  if (vendorAllowed(identity.vendors, vendor)) return;
  throw metasyncError('METASYNC_ERR_AUTH_SCOPE', `token ${identity.id} may not publish ${packageName}: vendor ${vendor} is outside its scope (${identity.vendors.join(', ')})`, {
    field: 'authorization',
    rule: 'token-scope',
    package: packageName,
    tokenId: identity.id,
  });
}

/** 403 unless the caller's token is an admin token. */
export function requireAdmin(request: FastifyRequest): void {
  const identity = requireToken(request);
  if (identity.admin) return;
  throw metasyncError('METASYNC_ERR_AUTH_SCOPE', `token ${identity.id} may not call ${request.method} ${request.url}: it is not an admin token`, {
    field: 'authorization',
    rule: 'admin-token',
    tokenId: identity.id,
  });
}
