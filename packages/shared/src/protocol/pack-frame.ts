/**
 * The bulk object transfer: `POST objects/pack` names many objects, the answer
 * streams them back as frames. This file is the whole wire format: the request
 * schema, the frame header schema, the one encoder (primary) and the one
 * decoder (mirror).
 */
import { z } from 'zod';
import { metasyncError } from '../errors.js';
import { isSha256Hex } from './content-address.js';

const sha256 = z.string().refine(isSha256Hex, 'must be a lowercase sha256 hex digest');

/** Most objects one pack request may name. */
export const MAX_PACK_OBJECTS = 1000;

export const packRequestSchema = z.object({
  objects: z.array(sha256).min(1).max(MAX_PACK_OBJECTS),
  /** Also send each object's precompressed gzip variant (`gzipLength` in its frame), so the mirror need not recompress. */
  gzip: z.boolean().optional(),
  /**
   * false: send no brotli variant; with `gzip`, a frame's body is then the gzip variant itself (one decode checks
   * the object and the variant the receiver keeps). For a receiver that makes its brotli variants later (a
   * bootstrap: one file per object, nothing to write but what it serves first). Absent means true.
   */
  brotli: z.boolean().optional(),
});
export type PackRequest = z.infer<typeof packRequestSchema>;

/**
 * A pack response (`application/x-metasync-pack`) is a sequence of frames:
 *
 *   +----------------+----------------------+----------------+--------------------------+
 *   | u32 BE headLen | PackFrameHeader JSON | `length` bytes | `gzipLength` bytes (opt) |
 *   +----------------+----------------------+----------------+--------------------------+
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

/** Longest frame header a receiver accepts; a real one is about 150 bytes. */
export const MAX_PACK_FRAME_HEADER_BYTES = 4096;
/**
 * How far compressed bytes (a frame's body or its gzip variant, or a single
 * object's br/gzip answer) may exceed the object's raw size: tiny or
 * incompressible objects grow a little when compressed.
 */
export const COMPRESSED_SLACK_BYTES = 64 * 1024;

const LENGTH_PREFIX_BYTES = 4;

/** One object as the primary sends it: its bytes in `encoding`, and optionally its gzip variant. */
export interface PackFrameObject {
  sha256: string;
  encoding: PackFrameHeader['encoding'];
  bytes: Uint8Array;
  gzip?: Uint8Array | undefined;
}

/** One frame: prefix, header, body and (when given) the gzip variant, in one buffer ready to write. */
export function encodePackFrame(object: PackFrameObject): Buffer {
  const { sha256, encoding, bytes, gzip } = object;
  // Key order is part of the bytes on the wire: sha256, length, encoding, then gzipLength or missing.
  const header: PackFrameHeader = { sha256, length: bytes.length, encoding, ...(gzip === undefined ? {} : { gzipLength: gzip.length }) };
  return frameOf(header, gzip === undefined ? [bytes] : [bytes, gzip]);
}

/** The frame for an object the sender does not have: `missing: true`, no body. */
export function encodeMissingPackFrame(sha256: string): Buffer {
  return frameOf({ sha256, length: 0, encoding: 'identity', missing: true }, []);
}

function frameOf(header: PackFrameHeader, parts: readonly Uint8Array[]): Buffer {
  if (!isSha256Hex(header.sha256))
    throw new TypeError(`expected a lowercase sha256 hex digest for a pack frame, got ${JSON.stringify(header.sha256)}`);
  const headerBytes = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.allocUnsafe(LENGTH_PREFIX_BYTES);
  prefix.writeUInt32BE(headerBytes.length, 0);
  return Buffer.concat([prefix, headerBytes, ...parts]);
}

/** A decoded frame; `bytes` and `gzip` are views of the received data, not copies. */
export interface PackFrame {
  header: PackFrameHeader;
  /** The body, in `header.encoding`: not yet decompressed nor hashed. */
  bytes: Buffer;
  /** The gzip variant, present when the header has `gzipLength`: not yet checked. */
  gzip?: Buffer;
  /** The raw size the receiver asked for this object with. */
  size: number;
  /** Bytes the whole frame took on the wire. */
  consumed: number;
}

/**
 * Parses one whole frame off the front of `data`, or returns undefined while
 * the frame is incomplete. `sizes` maps each asked-for sha256 to its raw size:
 * a frame for anything else, or longer than its size allows, throws before
 * its body is waited for. Throws METASYNC_ERR_SYNC_PROTOCOL (header too long,
 * malformed, or for an object not asked for) or METASYNC_ERR_OBJECT_TOO_LARGE.
 * Decompressing and hashing the body is the caller's job.
 */
export function decodePackFrame(data: Buffer, sizes: ReadonlyMap<string, number>): PackFrame | undefined {
  if (data.length < LENGTH_PREFIX_BYTES) return undefined;
  const headLength = data.readUInt32BE(0);
  if (headLength > MAX_PACK_FRAME_HEADER_BYTES)
    throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `pack frame header of ${headLength} bytes`, { headLength });
  const headEnd = LENGTH_PREFIX_BYTES + headLength;
  if (data.length < headEnd) return undefined;
  let header: PackFrameHeader;
  try {
    header = packFrameHeaderSchema.parse(JSON.parse(data.subarray(LENGTH_PREFIX_BYTES, headEnd).toString('utf8')));
  } catch (err) {
    throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', 'pack frame header is malformed', {}, err);
  }
  const size = sizes.get(header.sha256);
  if (size === undefined)
    throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `pack sent object ${header.sha256}, which was not asked for`, {
      sha256: header.sha256,
    });
  if (header.length > size + COMPRESSED_SLACK_BYTES) {
    throw metasyncError(
      'METASYNC_ERR_OBJECT_TOO_LARGE',
      `pack frame of ${header.sha256} is ${header.length} bytes for a ${size} byte object`,
      { sha256: header.sha256 },
    );
  }
  const gzipLength = header.gzipLength ?? 0;
  if (gzipLength > size + COMPRESSED_SLACK_BYTES) {
    throw metasyncError(
      'METASYNC_ERR_OBJECT_TOO_LARGE',
      `pack frame of ${header.sha256} carries a ${gzipLength} byte gzip variant for a ${size} byte object`,
      { sha256: header.sha256 },
    );
  }
  const bodyEnd = headEnd + header.length;
  const end = bodyEnd + gzipLength;
  if (data.length < end) return undefined;
  const bytes = data.subarray(headEnd, bodyEnd);
  return { header, bytes, ...(header.gzipLength === undefined ? {} : { gzip: data.subarray(bodyEnd, end) }), size, consumed: end };
}

/**
 * Decodes a pack response body as it arrives, yielding each frame once whole.
 * Lazy: the next frame is parsed only when the consumer asks for it, so frames
 * before a bad one are all handed out before the error is thrown, and a
 * consumer that stops early stops the source (its `return()` is called).
 * A source that ends inside a frame ends the frames without an error: the
 * caller sees which asked-for objects never came.
 */
export async function* readPackFrames(
  source: AsyncIterable<Uint8Array>,
  sizes: ReadonlyMap<string, number>,
): AsyncGenerator<PackFrame, void, undefined> {
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of source) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    pending = pending.length === 0 ? buffer : Buffer.concat([pending, buffer]);
    for (;;) {
      const frame = decodePackFrame(pending, sizes);
      if (frame === undefined) break;
      pending = pending.subarray(frame.consumed);
      yield frame;
    }
  }
}
