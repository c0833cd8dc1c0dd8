import { Readable } from 'node:stream';
import {
  IMMUTABLE_CACHE_CONTROL,
  PACK_CONTENT_TYPE,
  SYNC_ROUTES,
  chooseEncoding,
  etagFor,
  isMetasyncError,
  isSha256Hex,
  metasyncError,
  packRequestSchema,
  type PackFrameHeader,
} from '@metasync/shared';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ObjectStore } from '../object-store.js';

/**
 * `GET /sync/v1/objects/<sha256>`: one object, its precompressed br/gzip
 * sibling when accepted, immutable. `POST /sync/v1/objects/pack`: many objects
 * in one framed stream (see PackFrameHeader in protocol.ts), brotli frames.
 */
export function syncObjectRoutes(app: FastifyInstance, options: { store: ObjectStore }): void {
  const { store } = options;

  app.get(`${SYNC_ROUTES.objects}/:sha256`, async (request: FastifyRequest<{ Params: { sha256: string } }>, reply) => {
    const { sha256 } = request.params;
    if (!isSha256Hex(sha256)) {
      throw metasyncError('METASYNC_ERR_REQUEST_INVALID', `object address ${JSON.stringify(String(sha256).slice(0, 80))} is not a lowercase sha256 hex digest`, {
        field: 'sha256',
        rule: 'sha256 hex',
      });
    }
    const encoding = chooseEncoding(request.headers['accept-encoding'], ['br', 'gzip']);
    const body = await store.readVariant(sha256, encoding);
    void reply
      .header('content-type', 'application/octet-stream')
      .header('cache-control', IMMUTABLE_CACHE_CONTROL)
      .header('etag', etagFor(sha256))
      .header('vary', 'accept-encoding');
    if (encoding !== 'identity') void reply.header('content-encoding', encoding);
    return reply.send(body);
  });

  app.post(SYNC_ROUTES.objectPack, (request, reply) => {
    const parsed = packRequestSchema.safeParse(request.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw metasyncError('METASYNC_ERR_REQUEST_INVALID', `pack request is invalid: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim(), {
        field: issue?.path.join('.') ?? 'objects',
        rule: issue?.message ?? '',
      });
    }
    const shas = parsed.data.objects;
    async function* frames(): AsyncGenerator<Buffer> {
      for (const sha256 of shas) {
        let bytes: Buffer;
        let header: PackFrameHeader;
        try {
          bytes = await store.readVariant(sha256, 'br');
          header = { sha256, length: bytes.length, encoding: 'br' };
        } catch (err) {
          if (!isMetasyncError(err, 'METASYNC_ERR_OBJECT_NOT_FOUND')) throw err;
          bytes = Buffer.alloc(0);
          header = { sha256, length: 0, encoding: 'identity', missing: true };
        }
        yield packFrame(header, bytes);
      }
    }
    void reply.header('content-type', PACK_CONTENT_TYPE).header('cache-control', 'no-store').send(Readable.from(frames()));
  });
}

export function packFrame(header: PackFrameHeader, bytes: Buffer): Buffer {
  const headerBytes = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.allocUnsafe(4);
  prefix.writeUInt32BE(headerBytes.length, 0);
  return Buffer.concat([prefix, headerBytes, bytes]);
}
