import { z } from 'zod';
import { s3ClientConfig, type S3ChecksumMode } from '@metasync/shared';
import type { Logger, OptionSpec } from '@metasync/shared/daemon';
import { s3ConnectionOptions, s3ConnectionSchemaShape } from '@metasync/shared/s3';
import type { JournalGeneration } from '../journal/record.js';
import type { S3Replication, SignedSnapshotSource } from './replication.js';

/**
 * The primary's optional S3 write-through: its options, and the wiring main.ts
 * calls. Credentials come from the AWS SDK's standard chain (env, profile,
 * instance role), never from flags. The AWS SDK (~0.5 s and ~20 MB to load) is
 * imported only when a bucket is configured.
 *
 *   const s3 = await createPrimaryS3({ config: config.s3, log, ... });   // undefined when not configured
 *   const core = await openPrimaryCore({ ..., beforeCommit: s3?.beforeCommit });
 *   s3?.start({ publisher: core.publisher, snapshots: core.snapshots });
 *   ... on shutdown, after the publisher closed: await s3?.close();
 */
export const PRIMARY_S3_OPTIONS = [
  ...s3ConnectionOptions('s3', {
    bucket: 'also write every object and snapshot to this S3 bucket; a generation is announced only once its objects are there',
    prefix: 'key prefix inside the bucket',
  }),
  {
    key: 's3NoUploadChecksum',
    flag: '--s3-no-upload-checksum',
    env: 'METASYNC_S3_NO_UPLOAD_CHECKSUM',
    description: 'do not send x-amz-checksum-sha256 (for servers that refuse it)',
    boolean: true,
  },
  {
    key: 's3ConditionalWrites',
    flag: '--s3-conditional-writes',
    env: 'METASYNC_S3_CONDITIONAL_WRITES',
    description: 'the server enforces If-None-Match (AWS S3, MinIO): skip the HEAD before each upload',
    boolean: true,
  },
  {
    key: 's3Concurrency',
    flag: '--s3-concurrency <n>',
    env: 'METASYNC_S3_CONCURRENCY',
    description: 'parallel S3 calls',
    defaultValue: '16',
  },
] as const satisfies readonly OptionSpec[];

/** zod fields for PRIMARY_S3_OPTIONS, spread into the primary's config schema. */
export const PRIMARY_S3_SCHEMA_SHAPE = {
  ...s3ConnectionSchemaShape('s3'),
  s3NoUploadChecksum: z.boolean(),
  s3ConditionalWrites: z.boolean(),
  s3Concurrency: z.coerce.number().int().min(1).max(256),
};

export interface PrimaryS3Config {
  bucket: string;
  prefix: string;
  region: string | undefined;
  endpoint: string | undefined;
  forcePathStyle: boolean;
  checksumMode: S3ChecksumMode;
  uploadChecksum: boolean;
  conditionalWrites: boolean;
  concurrency: number;
}

type ParsedS3Fields = z.output<z.ZodObject<typeof PRIMARY_S3_SCHEMA_SHAPE>>;

/** The S3 part of the primary's config; undefined when no bucket is configured. */
export function primaryS3Config(raw: ParsedS3Fields): PrimaryS3Config | undefined {
  if (raw.s3Bucket === undefined) return undefined;
  return {
    bucket: raw.s3Bucket,
    prefix: raw.s3Prefix,
    region: raw.s3Region,
    endpoint: raw.s3Endpoint,
    forcePathStyle: raw.s3ForcePathStyle,
    checksumMode: raw.s3Checksums,
    uploadChecksum: !raw.s3NoUploadChecksum,
    conditionalWrites: raw.s3ConditionalWrites,
    concurrency: raw.s3Concurrency,
  };
}

export interface PrimaryS3 {
  /** For openPrimaryCore: the durability barrier before each journal append. */
  beforeCommit(generation: JournalGeneration): Promise<void>;
  /** Attaches to the opened core and starts snapshot uploads (the first one backfills the bucket). */
  start(core: {
    publisher: {
      readObject(sha256: string): Promise<Buffer>;
      onCommit(listener: (info: { generation: { seq: number } }) => void): () => void;
    };
    snapshots: SignedSnapshotSource;
  }): void;
  readonly replication: S3Replication | undefined;
  close(): Promise<void>;
}

export async function createPrimaryS3(options: {
  config: PrimaryS3Config | undefined;
  log: Logger;
  snapshotEveryGenerations: number;
  snapshotIntervalMs: number;
}): Promise<PrimaryS3 | undefined> {
  const { config, log } = options;
  if (config === undefined) return undefined;
  const [{ S3Client }, { createS3Sink }, { createS3Replication }] = await Promise.all([
    import('@aws-sdk/client-s3'),
    import('./sink.js'),
    import('./replication.js'),
  ]);
  const client = new S3Client(
    s3ClientConfig({
      region: config.region,
      endpoint: config.endpoint,
      forcePathStyle: config.forcePathStyle,
      checksumMode: config.checksumMode,
    }),
  );
  const sink = createS3Sink({
    client,
    bucket: config.bucket,
    prefix: config.prefix,
    log,
    concurrency: config.concurrency,
    uploadChecksum: config.uploadChecksum,
    conditionalWrites: config.conditionalWrites,
  });
  let replication: S3Replication | undefined;
  let unsubscribe: (() => void) | undefined;
  log.info({ bucket: config.bucket, prefix: sink.prefix, endpoint: config.endpoint ?? 'aws' }, 's3 write-through enabled');
  return {
    get replication() {
      return replication;
    },
    beforeCommit(generation) {
      if (replication === undefined)
        return Promise.reject(new Error('S3 write-through is not started: call start(core) before publishing'));
      return replication.beforeCommit(generation);
    },
    start(core) {
      replication = createS3Replication({
        sink,
        readObject: (sha) => core.publisher.readObject(sha),
        snapshots: core.snapshots,
        everyGenerations: options.snapshotEveryGenerations,
        intervalMs: options.snapshotIntervalMs,
        log,
      });
      const started = replication;
      unsubscribe = core.publisher.onCommit(({ generation }) => started.committed(generation.seq));
      started.start();
    },
    async close() {
      unsubscribe?.();
      await replication?.close();
      client.destroy();
    },
  };
}
