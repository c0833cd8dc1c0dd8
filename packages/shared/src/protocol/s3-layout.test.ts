import { describe, expect, it } from 'vitest';
import { sha256Hex } from './content-address.js';
import { normalizeS3Prefix, parseS3SnapshotKey, s3ClientConfig, s3ObjectKey, s3SnapshotKey, s3SnapshotsPrefix } from './s3-layout.js';

describe('s3 layout', () => {
  it('keys an object by its sha256 in the two-level cafs layout', () => {
    const sha = sha256Hex('hello');
    expect(s3ObjectKey('repo/', sha)).toBe(`repo/objects/${sha.slice(0, 2)}/${sha.slice(2)}`);
    expect(() => s3ObjectKey('', 'ABC')).toThrow(TypeError);
  });

  it('normalizes prefixes to empty or one trailing slash and refuses dot segments', () => {
    expect(normalizeS3Prefix(undefined)).toBe('');
    expect(normalizeS3Prefix('/')).toBe('');
    expect(normalizeS3Prefix('/a/b//')).toBe('a/b/');
    expect(() => normalizeS3Prefix('a/../b')).toThrow(/prefix/);
    expect(() => normalizeS3Prefix('a b')).toThrow(/prefix/);
  });

  it('lists snapshot keys newest first in byte order', () => {
    const seqs = [0, 1, 9, 10, 99, 100, 12345, Number.MAX_SAFE_INTEGER];
    const keys = seqs.map((seq) => s3SnapshotKey('p/', seq));
    const sorted = [...keys].sort();
    expect(sorted.map((key) => parseS3SnapshotKey('p/', key))).toEqual([...seqs].reverse());
    expect(keys.every((key) => key.startsWith(s3SnapshotsPrefix('p/')))).toBe(true);
  });

  it('parses only well-formed snapshot keys whose two numbers agree', () => {
    expect(parseS3SnapshotKey('p/', s3SnapshotKey('p/', 42))).toBe(42);
    expect(parseS3SnapshotKey('q/', s3SnapshotKey('p/', 42))).toBeUndefined();
    expect(parseS3SnapshotKey('p/', 'p/snapshots/9007199254740949-43.json')).toBeUndefined();
    expect(parseS3SnapshotKey('p/', 'p/snapshots/latest.json')).toBeUndefined();
  });

  it('builds a client config with checksums only when required by default', () => {
    expect(s3ClientConfig({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9000', forcePathStyle: true })).toEqual({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000, throwOnRequestTimeout: true },
    });
    expect(s3ClientConfig({ region: 'eu-west-1', checksumMode: 'when-supported' })).toMatchObject({
      forcePathStyle: false,
      requestChecksumCalculation: 'WHEN_SUPPORTED',
    });
  });
});
