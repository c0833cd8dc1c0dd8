import { brotliCompressSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { isMetasyncError, type ErrorCode } from '../errors.js';
import { sha256Hex } from './content-address.js';
import {
  COMPRESSED_SLACK_BYTES,
  MAX_PACK_FRAME_HEADER_BYTES,
  decodePackFrame,
  encodeMissingPackFrame,
  encodePackFrame,
  readPackFrames,
  type PackFrame,
} from './pack-frame.js';

const text = Buffer.from('{"packages":{"acme/foo":[]}}'.repeat(20));
const textSha = sha256Hex(text);
const other = Buffer.from('{"b":2}');
const otherSha = sha256Hex(other);
const absentSha = sha256Hex('absent');
const sizes = new Map([
  [textSha, text.length],
  [otherSha, other.length],
  [absentSha, 10],
]);

/** A frame built by hand, byte for byte as the wire format describes it. */
function handFrame(headerJson: string, ...parts: Buffer[]): Buffer {
  const header = Buffer.from(headerJson);
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(header.length, 0);
  return Buffer.concat([prefix, header, ...parts]);
}

async function* chunksOf(data: Buffer, chunkBytes: number): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < data.length; offset += chunkBytes) yield data.subarray(offset, offset + chunkBytes);
}

async function collect(frames: AsyncIterable<PackFrame>): Promise<PackFrame[]> {
  const out: PackFrame[] = [];
  for await (const frame of frames) out.push(frame);
  return out;
}

function expectCode(fn: () => unknown, code: ErrorCode): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(isMetasyncError(thrown, code), String(thrown)).toBe(true);
}

describe('encodePackFrame', () => {
  it('writes a u32 big-endian header length, the header JSON in wire key order, the body, then the gzip variant', () => {
    const br = brotliCompressSync(text);
    const gz = gzipSync(text);
    expect(encodePackFrame({ sha256: textSha, encoding: 'br', bytes: br, gzip: gz })).toEqual(
      handFrame(`{"sha256":"${textSha}","length":${br.length},"encoding":"br","gzipLength":${gz.length}}`, br, gz),
    );
    expect(encodePackFrame({ sha256: otherSha, encoding: 'identity', bytes: other })).toEqual(
      handFrame(`{"sha256":"${otherSha}","length":${other.length},"encoding":"identity"}`, other),
    );
  });

  it('writes a missing object as a header with missing: true and no body', () => {
    expect(encodeMissingPackFrame(absentSha)).toEqual(
      handFrame(`{"sha256":"${absentSha}","length":0,"encoding":"identity","missing":true}`),
    );
  });

  it('refuses a frame for something that is not a sha256 hex digest', () => {
    expect(() => encodePackFrame({ sha256: textSha.toUpperCase(), encoding: 'identity', bytes: text })).toThrow(TypeError);
    expect(() => encodeMissingPackFrame('nope')).toThrow(TypeError);
  });
});

describe('decodePackFrame', () => {
  it("round-trips frames with a gzip variant, without one, and missing, reporting each frame's wire length", () => {
    const br = brotliCompressSync(text);
    const gz = gzipSync(text);
    const frames = [
      encodePackFrame({ sha256: textSha, encoding: 'br', bytes: br, gzip: gz }),
      encodeMissingPackFrame(absentSha),
      encodePackFrame({ sha256: otherSha, encoding: 'identity', bytes: other }),
    ];
    let data = Buffer.concat(frames);
    const decoded: PackFrame[] = [];
    for (let frame = decodePackFrame(data, sizes); frame !== undefined; frame = decodePackFrame(data, sizes)) {
      decoded.push(frame);
      data = data.subarray(frame.consumed);
    }
    expect(data.length).toBe(0);
    expect(decoded).toEqual([
      {
        header: { sha256: textSha, length: br.length, encoding: 'br', gzipLength: gz.length },
        bytes: br,
        gzip: gz,
        size: text.length,
        consumed: frames[0]!.length,
      },
      {
        header: { sha256: absentSha, length: 0, encoding: 'identity', missing: true },
        bytes: Buffer.alloc(0),
        size: 10,
        consumed: frames[1]!.length,
      },
      {
        header: { sha256: otherSha, length: other.length, encoding: 'identity' },
        bytes: other,
        size: other.length,
        consumed: frames[2]!.length,
      },
    ]);
    expect('gzip' in decoded[2]!).toBe(false);
  });

  it('waits (returns undefined) for every truncation of a frame, and decodes it once the last byte is there', () => {
    const frame = encodePackFrame({ sha256: textSha, encoding: 'identity', bytes: text, gzip: gzipSync(text) });
    for (let length = 0; length < frame.length; length++)
      expect(decodePackFrame(frame.subarray(0, length), sizes), `first ${length} bytes`).toBeUndefined();
    expect(decodePackFrame(frame, sizes)?.consumed).toBe(frame.length);
  });

  it('refuses a header length over the limit as soon as the length prefix is in', () => {
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(MAX_PACK_FRAME_HEADER_BYTES + 1, 0);
    expectCode(() => decodePackFrame(prefix, sizes), 'METASYNC_ERR_SYNC_PROTOCOL');
    prefix.writeUInt32BE(0xffffffff, 0);
    expectCode(() => decodePackFrame(prefix, sizes), 'METASYNC_ERR_SYNC_PROTOCOL');
    // At the limit the decoder waits for the header instead.
    prefix.writeUInt32BE(MAX_PACK_FRAME_HEADER_BYTES, 0);
    expect(decodePackFrame(prefix, sizes)).toBeUndefined();
  });

  it('refuses a header that is not JSON or breaks the header schema', () => {
    const malformed = [
      'not json',
      'null',
      `{"sha256":"${textSha.toUpperCase()}","length":1,"encoding":"identity"}`,
      `{"sha256":"${textSha.slice(1)}","length":1,"encoding":"identity"}`,
      '{"length":1,"encoding":"identity"}',
      `{"sha256":"${textSha}","length":-1,"encoding":"identity"}`,
      `{"sha256":"${textSha}","length":1.5,"encoding":"identity"}`,
      `{"sha256":"${textSha}","length":1,"encoding":"deflate"}`,
      `{"sha256":"${textSha}","length":1,"encoding":"identity","gzipLength":-1}`,
    ];
    for (const header of malformed) expectCode(() => decodePackFrame(handFrame(header, text), sizes), 'METASYNC_ERR_SYNC_PROTOCOL');
  });

  it('refuses a frame for an object that was not asked for', () => {
    const frame = encodePackFrame({ sha256: sha256Hex('unasked'), encoding: 'identity', bytes: Buffer.from('unasked') });
    expectCode(() => decodePackFrame(frame, sizes), 'METASYNC_ERR_SYNC_PROTOCOL');
  });

  it('refuses a body or gzip variant longer than the asked size plus the compression slack, before the body arrives', () => {
    const limit = other.length + COMPRESSED_SLACK_BYTES;
    const header = (length: number, gzipLength?: number): Buffer =>
      handFrame(JSON.stringify({ sha256: otherSha, length, encoding: 'br', ...(gzipLength === undefined ? {} : { gzipLength }) }));
    expectCode(() => decodePackFrame(header(limit + 1), sizes), 'METASYNC_ERR_OBJECT_TOO_LARGE');
    expectCode(() => decodePackFrame(header(1, limit + 1), sizes), 'METASYNC_ERR_OBJECT_TOO_LARGE');
    // Exactly at the limit is allowed: the decoder waits for the bytes.
    expect(decodePackFrame(header(limit, limit), sizes)).toBeUndefined();
    const full = encodePackFrame({ sha256: otherSha, encoding: 'br', bytes: Buffer.alloc(limit), gzip: Buffer.alloc(limit) });
    expect(decodePackFrame(full, sizes)?.consumed).toBe(full.length);
  });
});

describe('readPackFrames', () => {
  const stream = Buffer.concat([
    encodePackFrame({ sha256: textSha, encoding: 'br', bytes: brotliCompressSync(text), gzip: gzipSync(text) }),
    encodeMissingPackFrame(absentSha),
    encodePackFrame({ sha256: otherSha, encoding: 'identity', bytes: other }),
  ]);

  it('yields the same frames whether the body arrives whole or a byte at a time', async () => {
    const whole = await collect(readPackFrames(chunksOf(stream, stream.length), sizes));
    expect(whole.map((f) => f.header.sha256)).toEqual([textSha, absentSha, otherSha]);
    expect(await collect(readPackFrames(chunksOf(stream, 1), sizes))).toEqual(whole);
    expect(await collect(readPackFrames(chunksOf(stream, 7), sizes))).toEqual(whole);
  });

  it('accepts plain Uint8Array chunks', async () => {
    async function* plain(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(stream);
    }
    expect((await collect(readPackFrames(plain(), sizes))).map((f) => f.header.sha256)).toEqual([textSha, absentSha, otherSha]);
  });

  it('ends without an error when the body stops inside a frame, after the frames that were whole', async () => {
    const cut = stream.subarray(0, stream.length - 1);
    expect((await collect(readPackFrames(chunksOf(cut, 5), sizes))).map((f) => f.header.sha256)).toEqual([textSha, absentSha]);
  });

  it('hands out the frames before a bad one, then throws its error', async () => {
    const bad = Buffer.concat([
      stream,
      encodePackFrame({ sha256: sha256Hex('unasked'), encoding: 'identity', bytes: Buffer.from('unasked') }),
    ]);
    const seen: string[] = [];
    let thrown: unknown;
    try {
      for await (const frame of readPackFrames(chunksOf(bad, bad.length), sizes)) seen.push(frame.header.sha256);
    } catch (err) {
      thrown = err;
    }
    expect(seen).toEqual([textSha, absentSha, otherSha]);
    expect(isMetasyncError(thrown, 'METASYNC_ERR_SYNC_PROTOCOL'), String(thrown)).toBe(true);
  });

  it('stops reading the source when the consumer stops', async () => {
    let returned = false;
    const source: AsyncIterable<Buffer> = {
      [Symbol.asyncIterator]() {
        const inner = chunksOf(stream, 1);
        return {
          next: () => inner.next(),
          return: async () => {
            returned = true;
            return { done: true, value: undefined };
          },
        };
      },
    };
    for await (const frame of readPackFrames(source, sizes)) {
      expect(frame.header.sha256).toBe(textSha);
      break;
    }
    expect(returned).toBe(true);
  });
});
