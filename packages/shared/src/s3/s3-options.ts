/**
 * The bucket settings both daemons take (the primary's write-through, the
 * mirror's cold start) as option-table rows and zod fields. Each daemon names
 * them under its own prefix and describes the bucket in its own words:
 *
 *   s3ConnectionOptions('s3', ...)           --s3-bucket            METASYNC_S3_BUCKET            s3Bucket
 *   s3ConnectionOptions('bootstrapS3', ...)  --bootstrap-s3-bucket  METASYNC_BOOTSTRAP_S3_BUCKET  bootstrapS3Bucket
 *
 * The rules behind the fields are contract (S3_SETTING_SCHEMAS in protocol/s3-layout.ts):
 * a value one side accepts the other cannot refuse.
 */
import { z } from 'zod';
import type { OptionSpec } from '../daemon/cli-options.js';
import { S3_SETTING_SCHEMAS } from '../protocol/s3-layout.js';

const S3_CONNECTION_FIELDS = {
  Bucket: S3_SETTING_SCHEMAS.bucket,
  Prefix: S3_SETTING_SCHEMAS.prefix,
  Region: S3_SETTING_SCHEMAS.region,
  Endpoint: S3_SETTING_SCHEMAS.endpoint,
  ForcePathStyle: z.boolean(),
  Checksums: S3_SETTING_SCHEMAS.checksums,
} as const;

type S3ConnectionFields = typeof S3_CONNECTION_FIELDS;

/** zod fields named `<keyPrefix>Bucket`, `<keyPrefix>Prefix`... */
export type S3ConnectionSchemaShape<P extends string> = { [K in keyof S3ConnectionFields as `${P}${K}`]: S3ConnectionFields[K] };

/** What differs between the daemons' help texts. */
export interface S3ConnectionDescriptions {
  /** `--<prefix>-bucket`: what giving a bucket turns on. */
  bucket: string;
  /** `--<prefix>-prefix`. */
  prefix: string;
}

const kebab = (camel: string): string => camel.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);

/** The option-table rows (spread into the daemon's OPTIONS), in this order: bucket, prefix, region, endpoint, force path style, checksums. */
export function s3ConnectionOptions(keyPrefix: string, descriptions: S3ConnectionDescriptions): OptionSpec[] {
  const row = (
    field: keyof S3ConnectionFields,
    placeholder: string | undefined,
    rest: Omit<OptionSpec, 'key' | 'flag' | 'env'>,
  ): OptionSpec => {
    const name = kebab(`${keyPrefix}${field}`);
    return {
      key: `${keyPrefix}${field}`,
      flag: placeholder === undefined ? `--${name}` : `--${name} <${placeholder}>`,
      env: `METASYNC_${name.replace(/-/g, '_').toUpperCase()}`,
      ...rest,
    };
  };
  return [
    row('Bucket', 'name', { description: descriptions.bucket }),
    row('Prefix', 'prefix', { description: descriptions.prefix, defaultValue: '' }),
    row('Region', 'region', { description: "the bucket's region (default: the AWS SDK chain, e.g. AWS_REGION)" }),
    row('Endpoint', 'url', { description: 'S3-compatible endpoint instead of AWS' }),
    row('ForcePathStyle', undefined, { description: 'path-style URLs (most S3-compatible servers)', boolean: true }),
    row('Checksums', 'mode', { description: 'SDK checksums: when-required | when-supported', defaultValue: 'when-required' }),
  ];
}

/** zod fields for the rows of `s3ConnectionOptions(keyPrefix, ...)`, spread into the daemon's config schema. */
export function s3ConnectionSchemaShape<P extends string>(keyPrefix: P): S3ConnectionSchemaShape<P> {
  return Object.fromEntries(
    Object.entries(S3_CONNECTION_FIELDS).map(([field, schema]) => [`${keyPrefix}${field}`, schema]),
  ) as S3ConnectionSchemaShape<P>;
}
