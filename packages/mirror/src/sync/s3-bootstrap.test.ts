import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import {
  generateSigningKeyPem,
  isMetasyncError,
  s3ClientConfig,
  s3ObjectKey,
  s3SnapshotKey,
  sha256Hex,
  signBody,
  signingKeyFromPem,
  type PublicKeyInfo,
  type SigningKey,
  type Snapshot,
} from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startS3Server, testS3Connection, TEST_S3_CREDENTIALS, type S3TestServer } from '../../../../test/helpers/s3-server.js';
import { bootstrapFromS3, type S3BootstrapOptions } from './s3-bootstrap.js';

const log = createLogger({ name: 's3-bootstrap-test', level: 'silent' });
const PREFIX = 'repo/';
let server: S3TestServer;
let client: S3Client;
let bucket: string;
let bucketCount = 0;
const key: SigningKey = signingKeyFromPem(generateSigningKeyPem());
const trusted: PublicKeyInfo[] = [{ keyId: key.keyId, publicKey: key.publicKey, active: true }];

beforeAll(async () => {
  server = await startS3Server();
  client = new S3Client({ ...s3ClientConfig(testS3Connection(server)), credentials: TEST_S3_CREDENTIALS });
});
afterAll(async () => {
  client.destroy();
  await server.stop();
});
beforeEach(async () => {
  bucket = `boot-${++bucketCount}`;
  await server.createBucket(bucket);
});

interface Seeded {
  snapshot: Snapshot;
  files: Map<string, Buffer>;
}

async function put(key: string, body: Buffer, metadata: Record<string, string> = {}): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: metadata }));
}

/** Lays out a bucket as the primary's sink does: objects by hash, then the signed snapshot. */
async function seed(seq: number, count: number, signer: SigningKey = key): Promise<Seeded> {
  const files = new Map<string, Buffer>();
  const entries: Snapshot['entries'] = [];
  for (let i = 0; i < count; i++) {
    const bytes = Buffer.from(JSON.stringify({ minified: 'composer/2.0', packages: { [`v/p${i}`]: [{ version: `1.0.${seq}` }] } }));
    const sha = sha256Hex(bytes);
    files.set(sha, bytes);
    entries.push({ path: `p2/v/p${i}.json`, sha256: sha, size: bytes.length, mtime: 1_700_000_000_000 });
    await put(s3ObjectKey(PREFIX, sha), bytes);
  }
  const snapshot: Snapshot = { kind: 'snapshot', seq, time: 1_700_000_000_000 + seq, entries };
  const body = Buffer.from(JSON.stringify(snapshot));
  await put(s3SnapshotKey(PREFIX, seq), body, { 'metasync-signature': signBody(signer, body) });
  return { snapshot, files };
}

function memoryStore(): {
  objects: Map<string, Buffer>;
  options: Pick<S3BootstrapOptions, 'hasObject' | 'writeObject' | 'flush'>;
  flushes: number;
} {
  const objects = new Map<string, Buffer>();
  const state = {
    objects,
    flushes: 0,
    options: {
      hasObject: (sha: string) => Promise.resolve(objects.has(sha)),
      writeObject: (o: { sha256: string; raw: Buffer }) => {
        objects.set(o.sha256, o.raw);
        return Promise.resolve();
      },
      flush: () => {
        state.flushes++;
        return Promise.resolve();
      },
    },
  };
  return state;
}

function bootstrap(store: ReturnType<typeof memoryStore>, overrides: Partial<S3BootstrapOptions> = {}): ReturnType<typeof bootstrapFromS3> {
  return bootstrapFromS3({
    client,
    bucket,
    prefix: PREFIX,
    trustedKeys: trusted,
    log,
    sleep: () => Promise.resolve(),
    ...store.options,
    ...overrides,
  });
}

describe('bootstrapFromS3', () => {
  it('fetches the newest signed snapshot and every object it names into the store', async () => {
    await seed(3, 4);
    const newest = await seed(12, 30);
    const store = memoryStore();
    const result = await bootstrap(store, { concurrency: 4 });
    expect(result?.snapshot).toEqual(newest.snapshot);
    expect(result).toMatchObject({ key: s3SnapshotKey(PREFIX, 12), objectsFetched: 30, objectsPresent: 0, refused: [] });
    expect([...store.objects.keys()].sort()).toEqual([...newest.files.keys()].sort());
    for (const [sha, bytes] of newest.files) expect(store.objects.get(sha)!.equals(bytes)).toBe(true);
    expect(store.flushes).toBe(1);
  });

  it('skips objects the store already holds', async () => {
    const seeded = await seed(5, 6);
    const store = memoryStore();
    const [firstSha, firstBytes] = [...seeded.files][0]!;
    store.objects.set(firstSha, firstBytes);
    await expect(bootstrap(store)).resolves.toMatchObject({ objectsFetched: 5, objectsPresent: 1 });
  });

  it('refuses a corrupted object (hash mismatch) and never hands it to the store', async () => {
    const seeded = await seed(8, 5);
    const [badSha, goodBytes] = [...seeded.files][2]!;
    const corrupted = Buffer.from(goodBytes);
    corrupted.writeUInt8(corrupted.readUInt8(corrupted.length - 2) ^ 0x01, corrupted.length - 2);
    await put(s3ObjectKey(PREFIX, badSha), corrupted);
    const store = memoryStore();
    const result = await bootstrap(store);
    expect(result?.refused).toEqual([{ sha256: badSha, key: s3ObjectKey(PREFIX, badSha), code: 'METASYNC_ERR_OBJECT_HASH_MISMATCH' }]);
    expect(store.objects.has(badSha)).toBe(false);
    expect(store.objects.size).toBe(4);
    for (const [sha, bytes] of store.objects) expect(sha256Hex(bytes)).toBe(sha);
  });

  it('refuses an object larger than the snapshot announces, and lists a missing one', async () => {
    const seeded = await seed(9, 3);
    const [bigSha, bytes] = [...seeded.files][0]!;
    await put(s3ObjectKey(PREFIX, bigSha), Buffer.concat([bytes, Buffer.from('trailing junk')]));
    const [goneSha] = [...seeded.files][1]!;
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'unrelated', Body: 'x' }));
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: s3ObjectKey(PREFIX, goneSha) }));
    const store = memoryStore();
    const result = await bootstrap(store);
    expect(new Map(result!.refused.map((r) => [r.sha256, r.code]))).toEqual(
      new Map([
        [bigSha, 'METASYNC_ERR_OBJECT_TOO_LARGE'],
        [goneSha, 'METASYNC_ERR_OBJECT_NOT_FOUND'],
      ]),
    );
    expect([...store.objects.keys()]).toEqual([[...seeded.files.keys()][2]]);
  });

  it('refuses a snapshot signed by an untrusted key before fetching any object', async () => {
    await seed(4, 3, signingKeyFromPem(generateSigningKeyPem()));
    const store = memoryStore();
    const err: unknown = await bootstrap(store).catch((e: unknown) => e);
    expect(isMetasyncError(err, 'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY')).toBe(true);
    expect(store.objects.size).toBe(0);
  });

  it('refuses a snapshot whose bytes were altered after signing', async () => {
    const seeded = await seed(6, 2);
    const body = Buffer.from(JSON.stringify({ ...seeded.snapshot, time: seeded.snapshot.time + 1 }));
    const original = Buffer.from(JSON.stringify(seeded.snapshot));
    await put(s3SnapshotKey(PREFIX, 6), body, { 'metasync-signature': signBody(key, original) });
    const err: unknown = await bootstrap(memoryStore()).catch((e: unknown) => e);
    expect(isMetasyncError(err, 'METASYNC_ERR_SIGNATURE_INVALID')).toBe(true);
  });

  it('refuses an older signed snapshot replayed under a newer key', async () => {
    const old = await seed(2, 1);
    const body = Buffer.from(JSON.stringify(old.snapshot));
    await put(s3SnapshotKey(PREFIX, 50), body, { 'metasync-signature': signBody(key, body) });
    const err: unknown = await bootstrap(memoryStore()).catch((e: unknown) => e);
    expect(isMetasyncError(err, 'METASYNC_ERR_SYNC_PROTOCOL')).toBe(true);
  });

  it('refuses a snapshot older than the generation the mirror already applied', async () => {
    await seed(10, 1);
    const err: unknown = await bootstrap(memoryStore(), { minSeq: 11 }).catch((e: unknown) => e);
    expect(isMetasyncError(err, 'METASYNC_ERR_SYNC_ROLLBACK')).toBe(true);
  });

  it('resolves undefined for a bucket without snapshots', async () => {
    await expect(bootstrap(memoryStore())).resolves.toBeUndefined();
  });

  it('fails with METASYNC_ERR_S3_CALL_FAILED naming the bucket when it does not exist', async () => {
    const err: unknown = await bootstrap(memoryStore(), { bucket: 'absent-bucket' }).catch((e: unknown) => e);
    expect(isMetasyncError(err, 'METASYNC_ERR_S3_CALL_FAILED')).toBe(true);
    expect((err as Error).message).toContain('s3://absent-bucket/repo/snapshots/');
  });

  it('stops reading an object body without a length one byte past the announced size', async () => {
    const bytes = Buffer.from('{"v":1}');
    const sha = sha256Hex(bytes);
    const snapshot: Snapshot = {
      kind: 'snapshot',
      seq: 1,
      time: 1,
      entries: [{ path: 'p2/a/b.json', sha256: sha, size: bytes.length, mtime: 1 }],
    };
    const body = Buffer.from(JSON.stringify(snapshot));
    let chunksServed = 0;
    const endless = Readable.from(
      (function* () {
        for (;;) {
          chunksServed++;
          yield Buffer.alloc(4096, 0x20);
        }
      })(),
    );
    const fakeClient = {
      send(command: unknown): Promise<unknown> {
        if (command instanceof ListObjectsV2Command)
          return Promise.resolve({ Contents: [{ Key: s3SnapshotKey(PREFIX, 1) }], IsTruncated: false });
        if (command instanceof GetObjectCommand && command.input.Key === s3SnapshotKey(PREFIX, 1)) {
          return Promise.resolve({ Body: Readable.from([body]), Metadata: { 'metasync-signature': signBody(key, body) } });
        }
        if (command instanceof GetObjectCommand) return Promise.resolve({ Body: endless });
        return Promise.reject(new Error('unexpected command'));
      },
    } as unknown as S3Client;
    const store = memoryStore();
    const result = await bootstrap(store, { client: fakeClient, objectAttempts: 1 });
    expect(result?.refused).toEqual([{ sha256: sha, key: s3ObjectKey(PREFIX, sha), code: 'METASYNC_ERR_OBJECT_TOO_LARGE' }]);
    expect(store.objects.size).toBe(0);
    expect(chunksServed).toBeLessThan(50);
  });
});
