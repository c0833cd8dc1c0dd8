import type { FastifyInstance } from 'fastify';
import { DIST_PINS_ROUTE, HEADERS, distPinReportSchema, metasyncError } from '@metasync/shared';
import type { DistPins } from '../dists/pins.js';
import type { RequireMirror } from './mirror-auth.js';

/** POST /sync/v1/dist-pins: an enrolled mirror reports the first bytes it fetched of an archive (dists/pins.ts). */
export function distPinRoutes(app: FastifyInstance, options: { pins: DistPins; requireMirror: RequireMirror }): void {
  app.post(DIST_PINS_ROUTE, async (request, reply) => {
    const mirrorId = request.headers[HEADERS.mirrorId];
    if (typeof mirrorId !== 'string' || mirrorId === '') {
      throw metasyncError('METASYNC_ERR_REQUEST_INVALID', `a pin report needs the ${HEADERS.mirrorId} header`, { field: HEADERS.mirrorId });
    }
    options.requireMirror(request, mirrorId, 'dist-pin');
    const parsed = distPinReportSchema.safeParse(request.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw metasyncError(
        'METASYNC_ERR_REQUEST_INVALID',
        `pin report is invalid: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim(),
        {
          field: issue?.path.join('.') ?? 'body',
        },
      );
    }
    const answer = await options.pins.pin(parsed.data);
    return reply.header('cache-control', 'no-store').send(answer);
  });
}
