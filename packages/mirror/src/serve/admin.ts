import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isMetasyncError, metasyncError } from '@metasync/shared';
import {
  clientAddressKey,
  createTokenCheck,
  rateLimitHook,
  registerRateLimiting,
  verifyBearer,
  type RateLimitSettings,
} from '@metasync/shared/http';
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
 * surface to authenticate against, and a 401 would suggest that some other
 * token might work. Admin calls are rate limited per client address
 * (`--admin-rate-limit` per `--rate-limit-window-ms`, 429 with Retry-After);
 * nothing else on the mirror is: serving routes never see a 429. The token is
 * compared in constant time (`createTokenCheck`); bearer parsing, the 401s and the
 * limiter are `@metasync/shared/http`, shared with the primary.
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
  /** Admin calls per window per client address; max 0 turns the limit off. Default 30 per minute. */
  rateLimit?: RateLimitSettings;
}

export const DEFAULT_ADMIN_RATE_LIMIT = { max: 30, windowMs: 60_000 } as const;

export function registerAdminRoutes(app: FastifyInstance, options: AdminRouteOptions): void {
  const isValidToken = options.adminToken === undefined || options.adminToken === '' ? undefined : createTokenCheck(options.adminToken);
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

  // A child context, so the limiter plugin is loaded before the route that uses it.
  void app.register(async (admin) => {
    const settings = options.rateLimit ?? DEFAULT_ADMIN_RATE_LIMIT;
    if (settings.max > 0) await registerRateLimiting(admin);
    const limiter = rateLimitHook(admin, { scope: 'admin', settings, key: clientAddressKey });
    admin.post(ADMIN_ROUTES.drain, limiter === undefined ? {} : { onRequest: limiter }, drainHandler);
  });

  async function drainHandler(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    void reply.header('cache-control', 'no-store');
    if (isValidToken === undefined) {
      throw metasyncError(
        'METASYNC_ERR_PATH_NOT_FOUND',
        `${ADMIN_ROUTES.drain} is disabled: this mirror has no admin token (--admin-token-file / METASYNC_ADMIN_TOKEN_FILE)`,
        { path: ADMIN_ROUTES.drain },
      );
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
      return reply.code(502).send({
        code: known?.code ?? 'METASYNC_ERR_DNS_CALL_FAILED',
        message: `still draining, but the DNS withdraw failed (retry the request): ${(err as Error).message}`,
      });
    }
    const report: DrainReport = {
      draining: true,
      dns: options.withdrawFromDns === undefined ? 'off' : 'withdrawn',
      mirrorId: options.mirrorId,
      seq: options.appliedSeq(),
      drainingSinceMs: options.drain.sinceMs ?? options.nowMs(),
    };
    return reply.code(200).send(report);
  }
}

function authenticate(isValidToken: (token: string) => boolean, request: FastifyRequest): void {
  const outcome = verifyBearer(request, (token) => (isValidToken(token) ? true : undefined), {
    tokenName: 'admin token',
    invalidDetail: '',
  });
  if (!outcome.ok) throw outcome.error;
}
