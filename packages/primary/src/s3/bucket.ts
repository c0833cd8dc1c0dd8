import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { isSha256Hex } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import { createS3Retrier, s3ErrorName, s3StatusOf, type S3RetryPolicy } from '@metasync/shared/s3';

/** PutObject input without the bucket and key the caller names separately. */
export type PutInput = Omit<ConstructorParameters<typeof PutObjectCommand>[0], 'Bucket' | 'Key'>;

/** The three S3 calls the sink makes, each retried (shared createS3Retrier) and with its expected failure mapped to a boolean. */
export interface Bucket {
  exists(key: string): Promise<boolean>;
  /** PUT with `If-None-Match: *`; false (a 412) when another writer created the key first. */
  /** `put` may be a function: called for each attempt, so a streamed body is opened afresh for a retry. */
  putIfAbsent(key: string, put: PutInput | (() => PutInput)): Promise<boolean>;
  /** The shas of every object under `<prefix>objects/`. */
  listObjectShas(): Promise<Set<string>>;
}

export function createBucket(options: {
  client: S3Client;
  bucket: string;
  /** Already normalized: `''` or `a/b/`. */
  prefix: string;
  log: Logger;
  retry?: S3RetryPolicy | undefined;
  sleep?: ((ms: number) => Promise<void>) | undefined;
}): Bucket {
  const { client, bucket, prefix, log } = options;
  const retrying = createS3Retrier({ bucket, log, policy: options.retry, sleep: options.sleep });

  async function exists(key: string): Promise<boolean> {
    return retrying('HeadObject', key, async () => {
      try {
        await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return true;
      } catch (err) {
        if (s3StatusOf(err) === 404 || s3ErrorName(err) === 'NotFound' || s3ErrorName(err) === 'NoSuchKey') return false;
        throw err;
      }
    });
  }

  async function putIfAbsent(key: string, put: PutInput | (() => PutInput)): Promise<boolean> {
    return retrying('PutObject', key, async () => {
      try {
        const input = typeof put === 'function' ? put() : put;
        await client.send(new PutObjectCommand({ ...input, Bucket: bucket, Key: key, IfNoneMatch: '*' }));
        return true;
      } catch (err) {
        if (s3StatusOf(err) === 412 || s3ErrorName(err) === 'PreconditionFailed') return false;
        throw err;
      }
    });
  }

  async function listObjectShas(): Promise<Set<string>> {
    const folder = `${prefix}objects/`;
    const found = new Set<string>();
    let token: string | undefined;
    for (let page = 0; page < 1_000_000; page++) {
      const answer = await retrying('ListObjectsV2', folder, () =>
        client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: folder, ...(token === undefined ? {} : { ContinuationToken: token }) }),
        ),
      );
      for (const item of answer.Contents ?? []) {
        const sha = item.Key?.slice(folder.length).replace('/', '');
        if (isSha256Hex(sha)) found.add(sha);
      }
      if (answer.IsTruncated !== true || answer.NextContinuationToken === undefined) break;
      token = answer.NextContinuationToken;
    }
    return found;
  }

  return { exists, putIfAbsent, listObjectShas };
}
