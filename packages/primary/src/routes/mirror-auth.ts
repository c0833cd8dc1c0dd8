/**
 * Mirror credentials on the sync routes that change the primary's view of a
 * mirror: an ack, and a push stream that names its mirror. Header syntax and
 * the 401 come from `verifyBearer` (as for publish tokens); a credential that is
 * not the named mirror id's enrolled one is a 403. Either way the caller throws
 * before anything is recorded, and the refusal is counted:
 *
 *   metasync_primary_mirror_auth_refused_total{route="ack"|"events", reason="missing"|"unknown"|"revoked"|"other-mirror"}
 *
 * The answer does not say which reason (as for tokens); the log does, with the mirror id.
 */
import { metasyncError } from '@metasync/shared';
import { verifyBearer } from '@metasync/shared/http';
import type { FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import type { MirrorCredentials } from '../mirrors/credential-store.js';
import type { MirrorCredentialCheck } from '../mirrors/credentials.js';

export type MirrorAuthRoute = 'ack' | 'events' | 'dist-pin';

/** Throws 401 METASYNC_ERR_AUTH_MISSING or 403 METASYNC_ERR_AUTH_MIRROR_CREDENTIAL unless the request carries `mirrorId`'s credential. */
export type RequireMirror = (request: FastifyRequest, mirrorId: string, route: MirrorAuthRoute) => void;

const WORDING = { tokenName: 'mirror credential', invalidDetail: '' } as const;

export function createMirrorAuth(options: { credentials: MirrorCredentials; registry: Registry }): RequireMirror {
  const refused = new Counter({
    name: 'metasync_primary_mirror_auth_refused_total',
    help: 'mirror acks and identified push streams refused for a missing or wrong mirror credential',
    labelNames: ['route', 'reason'] as const,
    registers: [options.registry],
  });
  return (request, mirrorId, route) => {
    let check: MirrorCredentialCheck = 'unknown';
    const outcome = verifyBearer(
      request,
      (token) => {
        check = options.credentials.check(mirrorId, token);
        return check === 'ok' ? mirrorId : undefined;
      },
      WORDING,
    );
    if (outcome.ok) return;
    const reason = outcome.error.code === 'METASYNC_ERR_AUTH_MISSING' ? 'missing' : check;
    refused.inc({ route, reason });
    request.log.warn({ mirrorId, route, reason, ip: request.ip }, 'mirror credential refused');
    if (reason === 'missing') throw outcome.error;
    throw metasyncError(
      'METASYNC_ERR_AUTH_MIRROR_CREDENTIAL',
      `${request.method} ${request.url.split('?')[0]}: the credential is not the enrolled credential of mirror ${mirrorId} (unknown, revoked or another mirror's)`,
      { field: 'authorization', rule: 'mirror-credential', mirrorId },
    );
  };
}
