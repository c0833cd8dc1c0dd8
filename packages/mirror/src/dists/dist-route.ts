/**
 * `GET|HEAD /dists/<vendor>/<name>/<reference>.<type>`: a daemon route, matched
 * before any repository lookup (`dists` is reserved). Answers from the archive
 * cache with what download clients expect of a static file: ETag (the sha256),
 * Last-Modified (when this mirror stored it), If-None-Match / If-Modified-Since,
 * single byte ranges (If-Range honoured; several ranges get the whole file),
 * and the archive type's Content-Type. Failures are JSON with a METASYNC_ERR_DIST_*
 * code and `no-store`; a 404 or 5xx makes Composer try the dist's own url next.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import parseRange from 'range-parser';
import {
  DIST_CONTENT_TYPES,
  DISTS_PREFIX,
  ERROR_CODES,
  etagFor,
  formatHttpDate,
  hasErrno,
  isMetasyncError,
  isNotModified,
  parseDistPath,
  type DistKey,
} from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import type { ArchiveEntry, ArchiveStore } from './archive-store.js';
import type { DistMetrics } from './dist-metrics.js';
import { PEER_HEADER, type DistService } from './dist-service.js';

export interface DistRouteOptions {
  /** Undefined: archives are not served here (--dist-cache-bytes 0), every /dists/ URL is a 404. */
  service: DistService | undefined;
  archives: ArchiveStore | undefined;
  metrics: DistMetrics;
  logger: Logger;
}

const IMMUTABLE = 'public, max-age=31536000, immutable';

async function fail(reply: FastifyReply, metrics: DistMetrics, code: keyof typeof ERROR_CODES, message: string): Promise<void> {
  const status = ERROR_CODES[code].status;
  metrics.responses.inc({ status: String(status) });
  await reply.code(status).header('cache-control', 'no-store').send({ code, message });
}

export function registerDistRoute(app: FastifyInstance, options: DistRouteOptions): void {
  const { service, archives, metrics, logger } = options;

  async function openCached(key: DistKey, fromPeer: boolean): Promise<{ entry: ArchiveEntry; handle: FileHandle }> {
    // Twice at most: an archive evicted between the lookup and the open is fetched again.
    for (let attempt = 1; ; attempt++) {
      const entry = await service!.obtain(key, { fromPeer });
      try {
        return { entry, handle: await open(archives!.pathOf(entry.sha256), 'r') };
      } catch (err) {
        if (!hasErrno(err, 'ENOENT') || attempt === 2) throw err;
        await service!.forget(key);
      }
    }
  }

  async function handler(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const url = request.raw.url ?? '';
    const rest = url.slice(DISTS_PREFIX.length).split('?')[0] ?? '';
    const key = parseDistPath(rest);
    if (service === undefined || archives === undefined || key === undefined) {
      await fail(reply, metrics, 'METASYNC_ERR_DIST_NOT_FOUND', 'no such dist archive on this mirror');
      return;
    }
    let opened: { entry: ArchiveEntry; handle: FileHandle };
    try {
      opened = await openCached(key, request.headers[PEER_HEADER] === '1');
    } catch (err) {
      if (isMetasyncError(err) && err.code.startsWith('METASYNC_ERR_DIST_')) {
        if (err.statusCode >= 500) logger.warn({ err, archive: rest }, 'dist archive not served');
        await fail(reply, metrics, err.code, err.message);
        return;
      }
      logger.error({ err, archive: rest }, 'dist archive failed');
      await fail(reply, metrics, 'METASYNC_ERR_DIST_FETCH_FAILED', 'the archive could not be served; use the dist url');
      return;
    }
    const { entry, handle } = opened;
    let streaming = false;
    try {
      const etag = etagFor(entry.sha256);
      reply
        .header('content-type', DIST_CONTENT_TYPES[key.type])
        .header('etag', etag)
        .header('last-modified', formatHttpDate(entry.storedMs))
        .header('cache-control', IMMUTABLE)
        .header('accept-ranges', 'bytes');
      const conditional = { 'if-none-match': request.headers['if-none-match'], 'if-modified-since': request.headers['if-modified-since'] };
      if (isNotModified(conditional, { etag, lastModifiedMs: entry.storedMs })) {
        metrics.responses.inc({ status: '304' });
        await reply.code(304).send();
        return;
      }
      let start = 0;
      let end = entry.size - 1;
      let status = 200;
      const rangeHeader = request.headers.range;
      const ifRange = request.headers['if-range'];
      if (
        rangeHeader !== undefined &&
        entry.size > 0 &&
        (ifRange === undefined || ifRange === etag || ifRange === formatHttpDate(entry.storedMs))
      ) {
        const ranges = parseRange(entry.size, rangeHeader, { combine: true });
        if (ranges === -1) {
          metrics.responses.inc({ status: '416' });
          await reply.code(416).header('content-range', `bytes */${entry.size}`).header('cache-control', 'no-store').send();
          return;
        }
        if (ranges !== -2 && ranges.type === 'bytes' && ranges.length === 1) {
          start = ranges[0]!.start;
          end = ranges[0]!.end;
          status = 206;
          reply.header('content-range', `bytes ${start}-${end}/${entry.size}`);
        }
      }
      metrics.responses.inc({ status: String(status) });
      reply.code(status).header('content-length', String(end - start + 1));
      if (request.method === 'HEAD' || entry.size === 0) {
        await reply.send();
        return;
      }
      streaming = true;
      await reply.send(handle.createReadStream({ start, end, autoClose: true }));
    } finally {
      if (!streaming) await handle.close();
    }
  }

  app.route({ method: ['GET', 'HEAD'], url: `${DISTS_PREFIX}*`, handler });
}
