import type { S3Client } from '@aws-sdk/client-s3';
import { s3ClientConfig, type PublicKeyInfo, type S3ChecksumMode, type Snapshot } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import { s3ConnectionOptions, s3ConnectionSchemaShape } from '@metasync/shared/s3';
import type { ObjectStore } from '@metasync/store';

/**
 * The mirror's optional S3 cold start: config options, and a source the syncer
 * calls once while the mirror is empty. Credentials come from the AWS SDK's
 * standard chain (env, profile, instance role), never from flags. The AWS SDK
 * (~0.5 s and ~20 MB to load) is imported only when a bootstrap actually runs.
 */
export const MIRROR_S3_OPTIONS = s3ConnectionOptions('bootstrapS3', {
  bucket: "bootstrap an empty mirror from the primary's S3 bucket, then follow the primary",
  prefix: 'key prefix inside the bucket (as the primary writes it)',
});

/** zod fields for MIRROR_S3_OPTIONS, spread into the mirror's config schema. */
export const MIRROR_S3_SCHEMA_SHAPE = s3ConnectionSchemaShape('bootstrapS3');

export interface MirrorS3Config {
  bootstrapS3Bucket?: string | undefined;
  bootstrapS3Prefix: string;
  bootstrapS3Region?: string | undefined;
  bootstrapS3Endpoint?: string | undefined;
  bootstrapS3ForcePathStyle: boolean;
  bootstrapS3Checksums: S3ChecksumMode;
}

export interface S3BootstrapSource {
  /**
   * Fills the store with the bucket's newest verified snapshot's objects; the snapshot to apply,
   * or undefined if the bucket has none. After one failure it answers undefined for the rest of the
   * process, so a broken or hung bucket costs one attempt, not one per sync retry.
   */
  bootstrap(trustedKeys: readonly PublicKeyInfo[], minSeq: number): Promise<Snapshot | undefined>;
  close(): void;
}

export function createS3BootstrapSource(options: {
  config: MirrorS3Config;
  store: ObjectStore;
  logger: Logger;
  concurrency: number;
}): S3BootstrapSource | undefined {
  const { config, store, logger } = options;
  const bucket = config.bootstrapS3Bucket;
  if (bucket === undefined) return undefined;
  let client: S3Client | undefined;
  let lastProgressLogMs = 0;
  let failed = false;
  const runBootstrap = async (trustedKeys: readonly PublicKeyInfo[], minSeq: number): Promise<Snapshot | undefined> => {
    const [{ S3Client }, { bootstrapFromS3 }] = await Promise.all([import('@aws-sdk/client-s3'), import('./s3-bootstrap.js')]);
    client ??= new S3Client(
      s3ClientConfig({
        region: config.bootstrapS3Region,
        endpoint: config.bootstrapS3Endpoint,
        forcePathStyle: config.bootstrapS3ForcePathStyle,
        checksumMode: config.bootstrapS3Checksums,
      }),
    );
    const result = await bootstrapFromS3({
      client,
      bucket,
      prefix: config.bootstrapS3Prefix,
      trustedKeys,
      log: logger,
      minSeq,
      concurrency: options.concurrency,
      // A present object may be a killed run's short file (puts write in place): reused only when it verifies;
      // has() also has the flush make it durable.
      hasObject: async (sha256) => (await store.has(sha256)) && (await store.verify(sha256)),
      writeObject: async (object) => {
        await store.put(object);
      },
      flush: () => store.sync(),
      onProgress(done, total) {
        const now = Date.now();
        if (total < 500 || (now - lastProgressLogMs < 2_000 && done !== total)) return;
        lastProgressLogMs = now;
        logger.info({ done, total, percent: Math.floor((done / total) * 100), source: 's3' }, 'fetching objects');
      },
    });
    if (result === undefined) return undefined;
    if (result.refused.length > 0) logger.warn({ refused: result.refused.length, bucket }, 's3 bootstrap left objects for the primary');
    return result.snapshot;
  };
  return {
    async bootstrap(trustedKeys, minSeq) {
      if (failed) return undefined;
      try {
        return await runBootstrap(trustedKeys, minSeq);
      } catch (err) {
        failed = true;
        throw err;
      }
    },
    close: () => client?.destroy(),
  };
}
