import { Readable } from 'node:stream';
import {
  IMMUTABLE_CACHE_CONTROL,
  PACK_CONTENT_TYPE,
  SYNC_ROUTES,
  encodeMissingPackFrame,
  encodePackFrame,
  etagFor,
  isMetasyncError,
  isSha256Hex,
  metasyncError,
  packRequestSchema,
} from '@metasync/shared';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ObjectStore } from '@metasync/store';
import { acceptedVariants } from './accepted-variants.js';

/**
 * `GET /sync/v1/objects/<sha256>`: one object, its precompressed br/gzip
 * variant when accepted and kept, immutable. `POST /sync/v1/objects/pack`: many
 * objects in one framed stream (shared protocol/pack-frame.ts), each frame
 * brotli when the object keeps a br variant, followed by the gzip variant when
 * the request asks for it and the object keeps one; without a br variant the
 * body is the gzip variant (when asked for and kept), else identity.
 */
export function syncObjectRoutes(
  app: FastifyInstance,
  options: {
    store: ObjectStore;
    /** A pack asked without brotli starts: a mirror is bootstrapping or catching up (the brotli backfill waits for it). */
    onPack?: () => void;
  },
): void {
  const { store } = options;

  app.get(`${SYNC_ROUTES.objects}/:sha256`, async (request: FastifyRequest<{ Params: { sha256: string } }>, reply) => {
    const { sha256 } = request.params;
    if (!isSha256Hex(sha256)) {
      throw metasyncError(
        'METASYNC_ERR_REQUEST_INVALID',
        `object address ${JSON.stringify(String(sha256).slice(0, 80))} is not a lowercase sha256 hex digest`,
        {
          field: 'sha256',
          rule: 'sha256 hex',
        },
      );
    }
    const { variant, bytes } = await store.readPreferred(sha256, acceptedVariants(request.headers['accept-encoding']));
    void reply
      .header('content-type', 'application/octet-stream')
      .header('cache-control', IMMUTABLE_CACHE_CONTROL)
      .header('etag', etagFor(sha256))
      .header('vary', 'accept-encoding');
    if (variant !== 'identity') void reply.header('content-encoding', variant);
    return reply.send(bytes);
  });

  app.post(SYNC_ROUTES.objectPack, (request, reply) => {
    const parsed = packRequestSchema.safeParse(request.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw metasyncError(
        'METASYNC_ERR_REQUEST_INVALID',
        `pack request is invalid: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim(),
        {
          field: issue?.path.join('.') ?? 'objects',
          rule: issue?.message ?? '',
        },
      );
    }
    const shas = parsed.data.objects;
    const withGzip = parsed.data.gzip === true;
    const withBrotli = parsed.data.brotli !== false;
    if (!withBrotli) options.onPack?.();
    const readFrame = async (sha256: string): Promise<Buffer> => {
      try {
        const [br, gzip] = await Promise.all([
          withBrotli ? readOptionalVariant(store, sha256, 'br') : undefined,
          withGzip ? readOptionalVariant(store, sha256, 'gzip') : undefined,
        ]);
        if (br !== undefined) return encodePackFrame({ sha256, encoding: 'br', bytes: br, gzip });
        // No brotli variant (deferred, not made yet): the gzip variant is the body, decoded once by the
        // receiver, which so verifies the object and the variant it keeps in one step.
        if (gzip !== undefined) return encodePackFrame({ sha256, encoding: 'gzip', bytes: gzip });
        return encodePackFrame({ sha256, encoding: 'identity', bytes: await store.read(sha256) });
      } catch (err) {
        if (!isMetasyncError(err, 'METASYNC_ERR_OBJECT_NOT_FOUND')) throw err;
        return encodeMissingPackFrame(sha256);
      }
    };
    // Reads run a few objects ahead of the socket, so the stream is not one file read per round trip.
    async function* frames(): AsyncGenerator<Buffer> {
      const startRead = (sha256: string): Promise<Buffer> => {
        const reading = readFrame(sha256);
        // A stream cut short leaves reads nobody awaits; the consumer still sees each rejection through its own await.
        void reading.catch(() => undefined);
        return reading;
      };
      const ahead = shas.slice(0, PACK_READ_AHEAD).map(startRead);
      for (const [index, sha256] of shas.entries()) {
        const later = shas[index + PACK_READ_AHEAD];
        if (later !== undefined) ahead.push(startRead(later));
        const frame = ahead.shift();
        if (frame === undefined) throw new Error(`pack read of ${sha256} was never started`);
        yield await frame;
      }
    }
    void reply.header('content-type', PACK_CONTENT_TYPE).header('cache-control', 'no-store').send(Readable.from(frames()));
  });
}

/** Objects read ahead of the one being sent in a pack stream. */
const PACK_READ_AHEAD = 8;

async function readOptionalVariant(store: ObjectStore, sha256: string, encoding: 'gzip' | 'br'): Promise<Buffer | undefined> {
  try {
    return await store.readVariant(sha256, encoding);
  } catch (err) {
    // The receiver compresses for itself when a frame carries no gzip variant.
    if (isMetasyncError(err, 'METASYNC_ERR_OBJECT_NOT_FOUND')) return undefined;
    throw err;
  }
}
