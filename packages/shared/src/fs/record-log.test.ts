import { describe, expect, it } from 'vitest';
import { decodeRecords, encodeRecord } from './record-log.js';

describe('record log framing', () => {
  const a = encodeRecord(Buffer.from('{"seq":1}'));
  const b = encodeRecord(Buffer.from('{"seq":2}'));

  it('reads back whole records', () => {
    const decoded = decodeRecords(Buffer.concat([a, b]));
    expect(decoded.records.map(String)).toEqual(['{"seq":1}', '{"seq":2}']);
    expect(decoded.tornTail).toBe(false);
  });

  it('cuts a torn tail at every possible crash offset', () => {
    const whole = Buffer.concat([a, b]);
    for (let cut = a.length; cut < whole.length; cut++) {
      const decoded = decodeRecords(whole.subarray(0, cut));
      expect(decoded.records.map(String)).toEqual(['{"seq":1}']);
      expect(decoded.validBytes).toBe(a.length);
    }
  });

  it('stops at a record whose checksum fails', () => {
    const corrupt = Buffer.concat([a, b]);
    const at = corrupt.length - 2;
    corrupt.writeUInt8(corrupt.readUInt8(at) ^ 0xff, at);
    expect(decodeRecords(corrupt).records).toHaveLength(1);
    expect(decodeRecords(corrupt).tornTail).toBe(true);
  });
});
