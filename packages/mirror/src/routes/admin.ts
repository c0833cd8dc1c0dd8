import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isMetasyncError, metasyncError } from '@metasync/shared';
import { startDraining, type DrainState } from '../health.js';

/**
 * `POST /admin/drain`: the operator (or `metasync mirror retire`) takes this
 * mirror out of service without stopping it.
 *
 *   1. `/health/fresh` answers 503 `draining` from now on (DNS checks fail closed);
 *   2. with self-registration on, the mirror withdraws its own DNS record and
 *      waits until the change is live plus one TTL (the answer comes after);
 *   3. it keeps serving every client that still arrives, until SIGTERM.
 *
 * Without a configured admin token the route answers 404: there is no admin
 * surface to authenticate against, and a 403 would suggest that some other
 * token might work. Tokens are compared as sha256 digests with
 * `timingSafeEqual`, so the time taken does not leak how much of one matched.
 */
export const ADMIN_ROUTES = { drain: '/admin/drain' } as const;

export interface DrainReport {
  draining: true;
  /** `withdrawn`: this mirror took itself out of DNS; `off`: self-registration is not configured. */
  dns: 'withdrawn' | 'off';
  mirrorId: string;
  seq: number;
  drainingSinceMs: number;
}

export interface AdminRouteOptions {
  /** Bearer token for admin calls; undefined disables the admin routes (404). */
  adminToken: string | undefined;
  drain: DrainState;
  mirrorId: string;
  appliedSeq: () => number;
  /** Self-registration's withdraw; undefined when the mirror does not manage its DNS record. */
  withdrawFromDns: (() => Promise<void>) | undefined;
  nowMs: () => number;
}

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** Constant-time check of a presented bearer token against the configured one. */
export function createAdminTokenCheck(token: string): (presented: string) => boolean {
  const expected = digest(token);
  return (presented) => timingSafeEqual(digest(presented), expected);
}

export function registerAdminRoutes(app: FastifyInstance, options: AdminRouteOptions): void {
  const isValidToken = options.adminToken === undefined || options.adminToken === '' ? undefined : createAdminTokenCheck(options.adminToken);
  let withdrawing: Promise<void> | undefined;

  const withdrawOnce = (): Promise<void> => {
    if (options.withdrawFromDns === undefined) return Promise.resolve();
    // Concurrent or repeated drains share one withdraw; a failed one is tried again by the next request.
    withdrawing ??= options.withdrawFromDns().catch((err: unknown) => {
      withdrawing = undefined;
      throw err;
    });
    return withdrawing;
  };

  app.post(ADMIN_ROUTES.drain, async (request: FastifyRequest, reply: FastifyReply) => {
    void reply.header('cache-control', 'no-store');
    if (isValidToken === undefined) {
      throw metasyncError('METASYNC_ERR_PATH_NOT_FOUND', `${ADMIN_ROUTES.drain} is disabled: this mirror has no admin token (--admin-token-file / METASYNC_ADMIN_TOKEN_FILE)`, { path: ADMIN_ROUTES.drain });
    }
    authenticate(isValidToken, request);
    startDraining(options.drain, options.nowMs());
    request.log.info({ dns: options.withdrawFromDns === undefined ? 'off' : 'withdrawing' }, 'draining');
    try {
      await withdrawOnce();
    } catch (err) {
      // The app's error handler turns 5xx into 404 (repository paths must never see a 5xx); an operator must see this one.
      request.log.error({ err }, 'drain: dns withdraw failed');
      const known = isMetasyncError(err) ? err : undefined;
      return reply.code(502).send({ code: known?.code ?? 'METASYNC_ERR_DNS_CALL_FAILED', message: `still draining, but the DNS withdraw failed (retry the request): ${(err as Error).message}` });
    }
    const report: DrainReport = {
      draining: true,
      dns: options.withdrawFromDns === undefined ? 'off' : 'withdrawn',
      mirrorId: options.mirrorId,
      seq: options.appliedSeq(),
      drainingSinceMs: options.drain.sinceMs ?? options.nowMs(),
    };
    return reply.code(200).send(report);
  });
}

function authenticate(isValidToken: (token: string) => boolean, request: FastifyRequest): void {
  const header = request.headers.authorization;
  if (header === undefined || header === '') {
    throw metasyncError('METASYNC_ERR_AUTH_MISSING', `${request.method} ${request.url} needs Authorization: Bearer <admin token>`, { field: 'authorization', rule: 'bearer-token' });
  }
  const match = /^Bearer +(\S+) *$/i.exec(header);
  if (match?.[1] === undefined || !isValidToken(match[1])) {
    throw metasyncError('METASYNC_ERR_AUTH_INVALID', `${request.method} ${request.url}: the bearer token is not valid`, { field: 'authorization', rule: 'bearer-token' });
  }
}
