import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { s3ConnectionOptions, s3ConnectionSchemaShape } from './s3-options.js';

describe('s3ConnectionOptions', () => {
  it('derives flags, env names and keys from the key prefix, with the caller wording for bucket and prefix', () => {
    const rows = s3ConnectionOptions('bootstrapS3', { bucket: 'cold start from this bucket', prefix: 'key prefix' });
    expect(rows.map((row) => [row.key, row.flag, row.env])).toEqual([
      ['bootstrapS3Bucket', '--bootstrap-s3-bucket <name>', 'METASYNC_BOOTSTRAP_S3_BUCKET'],
      ['bootstrapS3Prefix', '--bootstrap-s3-prefix <prefix>', 'METASYNC_BOOTSTRAP_S3_PREFIX'],
      ['bootstrapS3Region', '--bootstrap-s3-region <region>', 'METASYNC_BOOTSTRAP_S3_REGION'],
      ['bootstrapS3Endpoint', '--bootstrap-s3-endpoint <url>', 'METASYNC_BOOTSTRAP_S3_ENDPOINT'],
      ['bootstrapS3ForcePathStyle', '--bootstrap-s3-force-path-style', 'METASYNC_BOOTSTRAP_S3_FORCE_PATH_STYLE'],
      ['bootstrapS3Checksums', '--bootstrap-s3-checksums <mode>', 'METASYNC_BOOTSTRAP_S3_CHECKSUMS'],
    ]);
    expect(rows[0]).toMatchObject({ description: 'cold start from this bucket' });
    expect(rows[1]).toMatchObject({ description: 'key prefix', defaultValue: '' });
    expect(rows[4]).toMatchObject({ boolean: true });
    expect(rows[5]).toMatchObject({ defaultValue: 'when-required' });
    expect(s3ConnectionOptions('s3', { bucket: 'b', prefix: 'p' })[0]).toMatchObject({
      key: 's3Bucket',
      flag: '--s3-bucket <name>',
      env: 'METASYNC_S3_BUCKET',
    });
  });
});

describe('s3ConnectionSchemaShape', () => {
  it('has one field per option row, validating as the contract says', () => {
    const rows = s3ConnectionOptions('s3', { bucket: 'b', prefix: 'p' });
    const shape = s3ConnectionSchemaShape('s3');
    expect(Object.keys(shape)).toEqual(rows.map((row) => row.key));
    const schema = z.object(shape);
    expect(schema.parse({ s3Bucket: 'my-bucket', s3Prefix: 'a/b', s3ForcePathStyle: false, s3Checksums: 'when-required' })).toMatchObject({
      s3Bucket: 'my-bucket',
      s3Prefix: 'a/b/',
    });
    expect(
      schema.safeParse({ s3Bucket: 'Not A Bucket', s3Prefix: '', s3ForcePathStyle: false, s3Checksums: 'when-required' }).success,
    ).toBe(false);
  });
});
