/**
 * Bearer-token authentication shared by the publish API and the admin routes
 * (header syntax and the 401 errors: `verifyBearer` in `@metasync/shared/http`).
 *
 *   identify (onRequest, never answers)  ->  rate limit keyed by its result  ->  requireToken (preParsing: 401)
 *   -> handler: requireVendor / requireAdmin (403 METASYNC_ERR_AUTH_SCOPE naming the token id)
 *
 * Identifying first and refusing later lets the limiter key valid tokens by id and
 * everything else by client address, and the refusal still comes before the body is read.
 */
import { metasyncError } from '@metasync/shared';
import { clientAddressKey, verifyBearer, type BearerOutcome } from '@metasync/shared/http';
import type { FastifyRequest } from 'fastify';
import type { PublishAuth } from '../publish/auth.js';
import { vendorAllowed, type TokenIdentity } from '../publish/tokens.js';

const outcomes = new WeakMap<FastifyRequest, BearerOutcome<TokenIdentity>>();

const WORDING = { tokenName: 'token', invalidDetail: ' (unknown or revoked)' } as const;

function resolve(auth: PublishAuth, request: FastifyRequest): BearerOutcome<TokenIdentity> {
  return verifyBearer(
    request,
    (token) => {
      const result = auth.match(token);
      if (result.ok) return result.identity;
      if (result.revokedId !== undefined)
        request.log.info({ tokenId: result.revokedId, url: request.url }, 'revoked publish token refused');
      return undefined;
    },
    WORDING,
  );
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
  return outcome?.ok === true ? `token:${outcome.caller.id}` : clientAddressKey(request);
}

/** preParsing (or first thing in a handler): 401 unless the token is valid. */
export function requireToken(request: FastifyRequest): TokenIdentity {
  const outcome = outcomes.get(request);
  if (outcome === undefined) throw new Error(`requireToken: ${request.url} was not identified (identifyHook missing)`);
  if (!outcome.ok) throw outcome.error;
  return outcome.caller;
}

/** 403 unless the caller's token may publish `packageName`'s vendor. */
export function requireVendor(request: FastifyRequest, packageName: string): void {
  const identity = requireToken(request);
  const vendor = packageName.slice(0, packageName.indexOf('/'));
  if (vendorAllowed(identity.vendors, vendor)) return;
  throw metasyncError(
    'METASYNC_ERR_AUTH_SCOPE',
    `token ${identity.id} may not publish ${packageName}: vendor ${vendor} is outside its scope (${identity.vendors.join(', ')})`,
    {
      field: 'authorization',
      rule: 'token-scope',
      package: packageName,
      tokenId: identity.id,
    },
  );
}

/** 403 unless the caller's token is an admin token. */
export function requireAdmin(request: FastifyRequest): void {
  const identity = requireToken(request);
  if (identity.admin) return;
  throw metasyncError(
    'METASYNC_ERR_AUTH_SCOPE',
    `token ${identity.id} may not call ${request.method} ${request.url}: it is not an admin token`,
    {
      field: 'authorization',
      rule: 'admin-token',
      tokenId: identity.id,
    },
  );
}
