/**
 * The bulk object transfer: `POST objects/pack` names many objects, the answer
 * streams them back as frames.
 */
import { z } from 'zod';
import { isSha256Hex } from './content-address.js';

const sha256 = z.string().refine(isSha256Hex, 'must be a lowercase sha256 hex digest');

/** Most objects one pack request may name. */
export const MAX_PACK_OBJECTS = 1000;

export const packRequestSchema = z.object({
  objects: z.array(sha256).min(1).max(MAX_PACK_OBJECTS),
  /** Also send each object's precompressed gzip variant (`gzipLength` in its frame), so the mirror need not recompress. */
  gzip: z.boolean().optional(),
});
export type PackRequest = z.infer<typeof packRequestSchema>;

/**
 * A pack response (`application/x-metasync-pack`) is a sequence of frames:
 *
 *   +----------------+----------------------+-------------------+
 *   | u32 BE headLen | PackFrameHeader JSON | `length` bytes    |
 *   +----------------+----------------------+-------------------+
 *
 * `encoding` says how the bytes are compressed; the receiver decodes and checks
 * sha256 of the decoded bytes. A missing object has `missing: true, length: 0`.
 * When the request asked for `gzip`, `gzipLength` more bytes follow the body:
 * the object's gzip variant, which the receiver gunzips and compares with the
 * verified bytes before keeping it.
 */
export const packFrameHeaderSchema = z.object({
  sha256,
  length: z.number().int().nonnegative(),
  encoding: z.enum(['identity', 'br', 'gzip']),
  missing: z.boolean().optional(),
  gzipLength: z.number().int().nonnegative().optional(),
});
export type PackFrameHeader = z.infer<typeof packFrameHeaderSchema>;
export const PACK_CONTENT_TYPE = 'application/x-metasync-pack';
