import { buildApp } from 'fauxqs';

/**
 * fauxqs (an S3-compatible server) in-process, bound to 127.0.0.1 with an
 * OS-chosen port (its `startFauxqs` binds 0.0.0.0, so this builds the app and
 * listens itself). Clients use path-style URLs and WHEN_REQUIRED checksums
 * (see `testS3Connection`). Every test that starts one stops it.
 *
 * What fauxqs does NOT do, so tests must not rely on it: conditional writes
 * (`If-None-Match: *` on PutObject is ignored and the object is overwritten),
 * checksum validation on upload (`x-amz-checksum-sha256` is ignored).
 */
export interface S3TestServer {
  /** e.g. http://127.0.0.1:41234 */
  endpoint: string;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startS3Server(buckets: readonly string[] = []): Promise<S3TestServer> {
  const app = buildApp({ logger: false });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const endpoint = new URL(address).origin;
  const createBucket = async (name: string): Promise<void> => {
    const response = await fetch(`${endpoint}/${encodeURIComponent(name)}`, { method: 'PUT' });
    if (!response.ok) throw new Error(`fauxqs CreateBucket ${name} answered ${response.status}: ${await response.text()}`);
  };
  for (const bucket of buckets) await createBucket(bucket);
  return { endpoint, createBucket, stop: () => app.close() };
}

/** Connection settings for a client of the test server; fauxqs accepts any credentials. */
export function testS3Connection(server: S3TestServer): {
  region: string;
  endpoint: string;
  forcePathStyle: true;
  checksumMode: 'when-required';
} {
  return { region: 'us-east-1', endpoint: server.endpoint, forcePathStyle: true, checksumMode: 'when-required' };
}

/** Static dummy credentials for the test server, as the env a spawned daemon reads through the SDK's standard chain. */
export const TEST_S3_ENV = {
  AWS_ACCESS_KEY_ID: 'metasync-test',
  AWS_SECRET_ACCESS_KEY: 'metasync-test-secret',
  AWS_REGION: 'us-east-1',
} as const;

export const TEST_S3_CREDENTIALS = { accessKeyId: TEST_S3_ENV.AWS_ACCESS_KEY_ID, secretAccessKey: TEST_S3_ENV.AWS_SECRET_ACCESS_KEY };
