import { crc32 } from 'node:zlib';

/**
 * Framing for append-only logs (the primary's journal, the mirror's applied
 * index). A record is committed once its frame is fully on disk; a torn tail
 * (crash mid-append) fails its length or CRC and is cut off on open.
 *
 *   +-------------+-------------+------------------+
 *   | u32 BE len  | u32 BE crc  | len bytes (JSON) |
 *   +-------------+-------------+------------------+
 */
export const RECORD_HEADER_BYTES = 8;
/** Guards against a corrupt length field making us allocate gigabytes. */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;

export function encodeRecord(payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  encodeRecordHeader(payload).copy(frame, 0);
  frame.set(payload, RECORD_HEADER_BYTES);
  return frame;
}

/** The frame header of a payload given in parts (written after it as they are: a large payload is never concatenated). */
export function encodeRecordHeaderOfParts(parts: readonly Uint8Array[]): Buffer {
  let length = 0;
  let crc = 0;
  for (const part of parts) {
    length += part.length;
    crc = crc32(part, crc);
  }
  if (length > MAX_RECORD_BYTES) throw new RangeError(`record of ${length} bytes exceeds ${MAX_RECORD_BYTES}`);
  const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  header.writeUInt32BE(length, 0);
  header.writeUInt32BE(crc, 4);
  return header;
}

/** The frame header alone: a large payload is then written after it as it is, not copied into a frame. */
export function encodeRecordHeader(payload: Uint8Array): Buffer {
  return encodeRecordHeaderOfParts([payload]);
}

export interface DecodedRecords {
  records: Buffer[];
  /** Bytes of whole, valid records from the start; anything after is a torn or corrupt tail. */
  validBytes: number;
  /** True when bytes after `validBytes` were present and rejected. */
  tornTail: boolean;
}

export function decodeRecords(data: Buffer): DecodedRecords {
  const records: Buffer[] = [];
  let offset = 0;
  while (offset + RECORD_HEADER_BYTES <= data.length) {
    const length = data.readUInt32BE(offset);
    const expectedCrc = data.readUInt32BE(offset + 4);
    const end = offset + RECORD_HEADER_BYTES + length;
    if (length > MAX_RECORD_BYTES || end > data.length) break;
    const payload = data.subarray(offset + RECORD_HEADER_BYTES, end);
    if (crc32(payload) !== expectedCrc) break;
    records.push(payload);
    offset = end;
  }
  return { records, validBytes: offset, tornTail: offset < data.length };
}
