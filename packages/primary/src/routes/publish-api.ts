/**
 * The publish API (bearer token):
 *
 *   PUT    /api/v1/packages/{vendor}/{name}                      {versions:[...]}  replace the version list
 *   POST   /api/v1/packages/{vendor}/{name}/versions             {version object}  add or replace one version
 *   DELETE /api/v1/packages/{vendor}/{name}                                        remove the package
 *   DELETE /api/v1/packages/{vendor}/{name}/versions/{version}                     remove one version
 *
 * Answers `{seq, package, versions}`: seq is the generation holding the change.
 * Authentication and the rate limit run before the body is read (routes/bearer-auth.ts);
 * a token publishes only the vendors it is scoped to (403 METASYNC_ERR_AUTH_SCOPE). Every rejection is
 * `{code, message, field, rule}` with the code's status; nothing is half-applied
 * because each call ends in at most one publisher.submit.
 */
import { ERROR_CODES, isComposerPackageName, isMetasyncError, metasyncError, type MetasyncError } from '@metasync/shared';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createPackageOperations, type PackageOperations } from '../publish/api-packages.js';
import {
  DEFAULT_API_LIMITS,
  validatePackageName,
  validateVersion,
  validateVersionList,
  validateVersionString,
  type ApiLimits,
} from '../publish/api-validation.js';
import type { VersionData } from '../composer/minify.js';
import { createStaticPublishAuth, type PublishAuth } from '../publish/auth.js';
import type { Publisher } from '../publish/publisher.js';
import { rateLimitHook, registerRateLimiting, type RateLimitSettings } from '@metasync/shared/http';
import { DEFAULT_RATE_LIMITS, type RefusalCounter } from './rate-limits.js';
import { callerKey, identifyHook, requireToken, requireVendor } from './bearer-auth.js';

export interface PublishApiOptions {
  publisher: Publisher;
  /** Accepted tokens and their vendor scopes (publish/auth.ts). */
  auth?: PublishAuth;
  /** Without `auth`: all-vendor bearer tokens in clear; an empty list refuses every call. */
  tokens?: readonly string[];
  /** Per token (or client address without a valid one); default DEFAULT_RATE_LIMITS.publish. */
  rateLimit?: RateLimitSettings;
  /** Counts 401/403/429 answers on /metrics. */
  refusals?: RefusalCounter;
  maxBodyBytes: number;
  limits?: ApiLimits;
}

export const PUBLISH_API_PREFIX = '/api/v1/packages';

type PackageParams = { vendor: string; name: string };
type VersionParams = PackageParams & { version: string };

/** Fastify's own body errors, in the project's terms. */
function toProjectError(err: FastifyError, maxBodyBytes: number): MetasyncError | undefined {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return metasyncError('METASYNC_ERR_REQUEST_TOO_LARGE', `request body is larger than ${maxBodyBytes} bytes`, {
        field: 'body',
        rule: 'max-bytes',
      });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return metasyncError('METASYNC_ERR_REQUEST_INVALID', 'request body is not valid JSON', { field: 'body', rule: 'json' });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return metasyncError('METASYNC_ERR_REQUEST_INVALID', 'request body must be application/json', {
        field: 'content-type',
        rule: 'application/json',
      });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return metasyncError('METASYNC_ERR_REQUEST_INVALID', 'request body length does not match Content-Length', {
        field: 'body',
        rule: 'content-length',
      });
    default:
      return undefined;
  }
}

function sendError(reply: FastifyReply, err: MetasyncError): FastifyReply {
  const field = typeof err.details.field === 'string' ? err.details.field : undefined;
  const rule = typeof err.details.rule === 'string' ? err.details.rule : undefined;
  // Scope refusals name the package and the token id; 429s say when to come back.
  const { package: packageName, tokenId, retryAfterS, limit, windowMs } = err.details;
  return reply
    .code(ERROR_CODES[err.code].status)
    .send({ code: err.code, message: err.message, field, rule, package: packageName, tokenId, retryAfterS, limit, windowMs });
}

export async function publishApiPlugin(app: FastifyInstance, options: PublishApiOptions): Promise<void> {
  const limits = options.limits ?? DEFAULT_API_LIMITS;
  const auth = options.auth ?? createStaticPublishAuth(options.tokens ?? []);
  const operations: PackageOperations = createPackageOperations({ publisher: options.publisher, limits });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const known = isMetasyncError(err) ? err : toProjectError(err, options.maxBodyBytes);
    if (known !== undefined) {
      if (known.statusCode >= 500) request.log.error({ err: known }, 'publish failed');
      return sendError(reply, known);
    }
    // Not ours to describe: the app's error handler logs it and answers a bare 500.
    throw err;
  });
  app.addHook('onRequest', identifyHook(auth));
  if (options.refusals !== undefined) app.addHook('onResponse', options.refusals('publish'));
  await registerRateLimiting(app);
  const limiter = rateLimitHook(app, { scope: 'publish', settings: options.rateLimit ?? DEFAULT_RATE_LIMITS.publish, key: callerKey });
  if (limiter !== undefined) app.addHook('onRequest', limiter);
  // 401 for a bad token, then 403 for a vendor outside its scope, both before the body is read.
  app.addHook('preParsing', async (request, _reply, payload) => {
    requireToken(request);
    const params = request.params as Partial<PackageParams>;
    if (typeof params.vendor === 'string' && typeof params.name === 'string')
      requireVendor(request, `${params.vendor}/${params.name}`.slice(0, 220));
    return payload;
  });

  const routeOptions = { bodyLimit: options.maxBodyBytes };
  const packageName = (request: FastifyRequest<{ Params: PackageParams }>): string =>
    validatePackageName(request.params.vendor, request.params.name);

  app.put<{ Params: PackageParams; Body: unknown }>(`${PUBLISH_API_PREFIX}/:vendor/:name`, routeOptions, async (request) => {
    const name = packageName(request);
    return operations.replace(name, validateVersionList(name, request.body, limits));
  });
  app.post<{ Params: PackageParams; Body: unknown }>(`${PUBLISH_API_PREFIX}/:vendor/:name/versions`, routeOptions, async (request) => {
    const name = packageName(request);
    const version: VersionData = validateVersion(name, request.body, 'body', limits);
    return operations.upsertVersion(name, version);
  });
  app.delete<{ Params: PackageParams }>(`${PUBLISH_API_PREFIX}/:vendor/:name`, routeOptions, async (request) => {
    return operations.removePackage(packageName(request));
  });
  app.delete<{ Params: VersionParams }>(`${PUBLISH_API_PREFIX}/:vendor/:name/versions/:version`, routeOptions, async (request) => {
    const name = packageName(request);
    return operations.removeVersion(name, validateVersionString(request.params.version));
  });
  // Anything else under the prefix: a known route with the wrong method, or a path that is no package name (`a/b/c`).
  app.all<{ Params: { '*': string } }>(`${PUBLISH_API_PREFIX}/*`, routeOptions, async (request) => {
    const segments = request.params['*'].split('/');
    const isRoute =
      (segments.length === 2 || (segments.length >= 3 && segments.length <= 4 && segments[2] === 'versions')) &&
      isComposerPackageName(`${segments[0]}/${segments[1]}`);
    if (isRoute) {
      throw metasyncError('METASYNC_ERR_REQUEST_INVALID', `method: ${request.method} is not allowed on ${request.url}`, {
        field: 'method',
        rule: 'allowed-methods',
      });
    }
    throw metasyncError(
      'METASYNC_ERR_PACKAGE_INVALID',
      `name: ${JSON.stringify(request.params['*'].slice(0, 220))} is not a vendor/name Composer package path`,
      {
        field: 'name',
        rule: 'composer-package-name',
      },
    );
  });
}
