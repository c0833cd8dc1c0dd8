import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  generateSigningKeyPem,
  isMetasyncError,
  s3ClientConfig,
  s3ObjectKey,
  s3SnapshotKey,
  sha256Hex,
  signingKeyFromPem,
} from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startS3Server, testS3Connection, TEST_S3_CREDENTIALS, type S3TestServer } from '../../../../test/helpers/s3-server.js';
import { readSnapshotBody, signSnapshot } from '../journal/snapshots.js';
import { createS3Sink, type S3Sink } from './sink.js';

const log = createLogger({ name: 's3-sink-test', level: 'silent' });
let server: S3TestServer;
let client: S3Client;
let bucket: string;
let bucketCount = 0;

beforeAll(async () => {
  server = await startS3Server();
  client = new S3Client({ ...s3ClientConfig(testS3Connection(server)), credentials: TEST_S3_CREDENTIALS });
});
afterAll(async () => {
  client.destroy();
  await server.stop();
});
beforeEach(async () => {
  bucket = `sink-${++bucketCount}`;
  await server.createBucket(bucket);
});

function sink(overrides: Partial<Parameters<typeof createS3Sink>[0]> = {}): S3Sink {
  return createS3Sink({ client, bucket, prefix: 'repo', log, sleep: () => Promise.resolve(), ...overrides });
}

async function getBytes(key: string): Promise<{ bytes: Buffer; metadata: Record<string, string> }> {
  const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return { bytes: Buffer.from(await answer.Body!.transformToByteArray()), metadata: answer.Metadata ?? {} };
}

function object(text: string): { sha: string; bytes: Buffer } {
  const bytes = Buffer.from(text);
  return { sha: sha256Hex(bytes), bytes };
}

describe('S3 sink', () => {
  it('writes an object through under its hash key and skips a second put of it', async () => {
    const s = sink();
    const { sha, bytes } = object('{"packages":{}}');
    await expect(s.putObject(sha, bytes)).resolves.toBe('stored');
    const stored = await getBytes(s3ObjectKey('repo/', sha));
    expect(stored.bytes.equals(bytes)).toBe(true);
    expect(stored.metadata['metasync-sha256']).toBe(sha);
    await expect(s.putObject(sha, bytes)).resolves.toBe('existed');
    expect(s.stats()).toMatchObject({ stored: 1, existed: 1, failed: 0, pending: 0 });
  });

  it('never overwrites an existing key, even when a fresh sink holds other bytes for it', async () => {
    const { sha, bytes } = object('the real object');
    const key = s3ObjectKey('repo/', sha);
    const earlier = Buffer.from('bytes already in the bucket');
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: earlier }));
    await expect(sink().putObject(sha, bytes)).resolves.toBe('existed');
    expect((await getBytes(key)).bytes.equals(earlier)).toBe(true);
  });

  it('refuses bytes that do not hash to the key and leaves the stored object alone', async () => {
    const s = sink();
    const { sha, bytes } = object('version one');
    await s.putObject(sha, bytes);
    const err: unknown = await sink()
      .putObject(sha, Buffer.from('version two'))
      .catch((e: unknown) => e);
    expect(isMetasyncError(err, 'METASYNC_ERR_OBJECT_HASH_MISMATCH')).toBe(true);
    expect((await getBytes(s3ObjectKey('repo/', sha))).bytes.equals(bytes)).toBe(true);
  });

  it('shares one upload between concurrent puts of the same object', async () => {
    const s = sink();
    const { sha, bytes } = object('concurrent');
    const outcomes = await Promise.all([s.putObject(sha, bytes), s.putObject(sha, bytes), s.putObject(sha, bytes)]);
    expect(outcomes).toEqual(['stored', 'stored', 'stored']);
    expect(s.stats().stored).toBe(1);
  });

  it('awaitDurable resolves only once in-flight objects are readable from the bucket', async () => {
    const s = sink();
    const objects = Array.from({ length: 40 }, (_, i) => object(`object ${i}`));
    for (const o of objects) void s.putObject(o.sha, o.bytes);
    await s.awaitDurable(objects.map((o) => o.sha));
    for (const o of objects) expect((await getBytes(s3ObjectKey('repo/', o.sha))).bytes.equals(o.bytes)).toBe(true);
  });

  it('awaitDurable names a missing object, or uploads it when given a reader', async () => {
    const present = object('present');
    await sink().putObject(present.sha, present.bytes);
    const missing = object('missing');
    const s = sink();
    const err: unknown = await s.awaitDurable([present.sha, missing.sha]).catch((e: unknown) => e);
    expect(isMetasyncError(err, 'METASYNC_ERR_OBJECT_NOT_FOUND')).toBe(true);
    expect((err as Error).message).toContain(`s3://${bucket}/${s3ObjectKey('repo/', missing.sha)}`);
    const read = (sha: string): Promise<Uint8Array> =>
      sha === missing.sha ? Promise.resolve(missing.bytes) : Promise.reject(new Error(`unexpected read ${sha}`));
    await expect(s.awaitDurable([present.sha, missing.sha], read)).resolves.toEqual({ uploaded: 1 });
    expect((await getBytes(s3ObjectKey('repo/', missing.sha))).bytes.equals(missing.bytes)).toBe(true);
  });

  it('checks many unknown objects with one listing and uploads only the missing ones', async () => {
    const objects = Array.from({ length: 30 }, (_, i) => object(`listed ${i}`));
    const writer = sink();
    await Promise.all(objects.slice(0, 26).map((o) => writer.putObject(o.sha, o.bytes)));
    const byId = new Map(objects.map((o) => [o.sha, o.bytes]));
    const reads: string[] = [];
    const sent: string[] = [];
    const counting = {
      send: (command: { constructor: { name: string } }) => (sent.push(command.constructor.name), client.send(command as never)),
    } as unknown as S3Client;
    const result = await sink({ client: counting, listThreshold: 8 }).awaitDurable(
      objects.map((o) => o.sha),
      (sha) => {
        reads.push(sha);
        return Promise.resolve(byId.get(sha)!);
      },
    );
    expect(result).toEqual({ uploaded: 4 });
    expect(reads.sort()).toEqual(
      objects
        .slice(26)
        .map((o) => o.sha)
        .sort(),
    );
    expect(sent.filter((name) => name === 'ListObjectsV2Command')).toHaveLength(1);
    expect(sent.filter((name) => name === 'HeadObjectCommand')).toHaveLength(4);
  });

  it('writes a snapshot with its statement and signature after uploading the objects it names', async () => {
    const key = signingKeyFromPem(generateSigningKeyPem());
    const files = [object('{"packages":[]}'), object('{"minified":"composer/2.0"}')];
    const manifest = new Map(
      files.map((f, i) => [
        i === 0 ? 'packages.json' : 'p2/a/b.json',
        { sha256: f.sha, size: f.bytes.length, mtime: 1_700_000_000_000, origin: 'api' as const },
      ]),
    );
    const dir = await mkdtemp(join(tmpdir(), 'metasync-sink-snapshot-'));
    try {
      const snapshot = await signSnapshot({ seq: 7, time: 1_700_000_000_000, manifest, key, dir });
      const byId = new Map(files.map((f) => [f.sha, f.bytes]));
      // The served file goes while objects upload (a newer head replaced it a minute ago): the upload has its bytes.
      const readObject = async (sha: string) => {
        await rm(snapshot.path, { force: true });
        return byId.get(sha)!;
      };
      const body = await readSnapshotBody(snapshot);
      const result = await sink().putSnapshot({ snapshot, readObject });
      expect(result).toEqual({ key: s3SnapshotKey('repo/', 7), created: true, objectsUploaded: 2 });
      const stored = await getBytes(result.key);
      expect(stored.bytes.equals(body)).toBe(true);
      expect(stored.metadata['metasync-signature']).toBe(snapshot.signature);
      expect(stored.metadata['metasync-snapshot-statement']).toBe(snapshot.statement);
      const again = await signSnapshot({ seq: 7, time: 1_700_000_000_000, manifest, key, dir });
      await expect(sink().putSnapshot({ snapshot: again })).resolves.toMatchObject({ created: false, objectsUploaded: 0 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('streams the body from disk when its objects are known durable, checks none, and resends it whole on a retry', async () => {
    const key = signingKeyFromPem(generateSigningKeyPem());
    const manifest = new Map(
      Array.from({ length: 2_000 }, (_, i) => [
        `p2/v${i % 13}/p${i}.json`,
        { sha256: sha256Hex(`object ${i}`), size: i, mtime: 1_700_000_000_000, origin: 'watch' as const },
      ]),
    );
    const dir = await mkdtemp(join(tmpdir(), 'metasync-sink-stream-'));
    try {
      const snapshot = await signSnapshot({ seq: 9, time: 1_700_000_000_000, manifest, key, dir });
      const sent: string[] = [];
      let failedOnce = false;
      // The first PUT of the snapshot reads its body to the end, then fails as a 500 would: the retry must send it all again.
      const flaky = {
        async send(command: PutObjectCommand | HeadObjectCommand) {
          sent.push(command.constructor.name);
          if (command instanceof PutObjectCommand && !failedOnce) {
            failedOnce = true;
            for await (const chunk of command.input.Body as AsyncIterable<Buffer>) void chunk;
            throw Object.assign(new Error('We encountered an internal error'), {
              name: 'InternalError',
              $metadata: { httpStatusCode: 500 },
            });
          }
          return client.send(command as never);
        },
      } as unknown as S3Client;
      const result = await sink({ client: flaky, retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 } }).putSnapshot({
        snapshot,
        objectsDurable: true,
      });
      expect(result).toEqual({ key: s3SnapshotKey('repo/', 9), created: true, objectsUploaded: 0 });
      expect(sent).toEqual(['HeadObjectCommand', 'PutObjectCommand', 'PutObjectCommand']);
      expect((await getBytes(result.key)).bytes.equals(await readSnapshotBody(snapshot))).toBe(true);
      expect(await readdir(dir)).toEqual([basename(snapshot.path)]); // its link for the upload is gone
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails with METASYNC_ERR_S3_CALL_FAILED naming bucket and key when the bucket does not exist', async () => {
    const { sha, bytes } = object('nowhere');
    const err: unknown = await sink({ bucket: 'no-such-bucket' })
      .putObject(sha, bytes)
      .catch((e: unknown) => e);
    expect(isMetasyncError(err, 'METASYNC_ERR_S3_CALL_FAILED')).toBe(true);
    expect((err as Error).message).toContain(`s3://no-such-bucket/${s3ObjectKey('repo/', sha)}`);
  });

  it('retries an unreachable endpoint with backoff, then fails naming the key', async () => {
    const down = await startS3Server();
    const endpoint = down.endpoint;
    await down.stop();
    const deadClient = new S3Client({
      ...s3ClientConfig({ ...testS3Connection(down), endpoint }),
      credentials: TEST_S3_CREDENTIALS,
      maxAttempts: 1,
    });
    const delays: number[] = [];
    const s = sink({
      client: deadClient,
      retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 20 },
      sleep: (ms) => (delays.push(ms), Promise.resolve()),
    });
    const { sha, bytes } = object('unreachable');
    const err: unknown = await s.putObject(sha, bytes).catch((e: unknown) => e);
    deadClient.destroy();
    expect(isMetasyncError(err, 'METASYNC_ERR_S3_CALL_FAILED')).toBe(true);
    expect((err as Error).message).toMatch(/HeadObject .* failed after 3 attempt/);
    expect(delays).toHaveLength(2);
    expect(s.stats()).toMatchObject({ failed: 1, pending: 0 });
  });

  it('with conditional writes, skips the HEAD and treats 412 PreconditionFailed as an existing object', async () => {
    const sent: unknown[] = [];
    const conditionalClient = {
      send(command: unknown): Promise<never> {
        sent.push(command);
        const input = (command as PutObjectCommand).input;
        if (command instanceof PutObjectCommand && input.IfNoneMatch === '*') {
          return Promise.reject(
            Object.assign(new Error('At least one of the pre-conditions you specified did not hold'), {
              name: 'PreconditionFailed',
              $metadata: { httpStatusCode: 412 },
            }),
          );
        }
        return Promise.reject(new Error('unexpected command'));
      },
    } as unknown as S3Client;
    const { sha, bytes } = object('raced');
    await expect(sink({ client: conditionalClient, conditionalWrites: true }).putObject(sha, bytes)).resolves.toBe('existed');
    expect(sent).toHaveLength(1);
    expect(sent.some((command) => command instanceof HeadObjectCommand)).toBe(false);
  });

  it('gives up on an endpoint that accepts connections but never answers, instead of stalling the publish', async () => {
    const sockets = new Set<Socket>();
    const hung = createServer((socket) => {
      sockets.add(socket);
    });
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const { port } = hung.address() as { port: number };
    const hungClient = new S3Client({
      ...s3ClientConfig({ region: 'us-east-1', endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, requestTimeoutMs: 150 }),
      credentials: TEST_S3_CREDENTIALS,
      maxAttempts: 1,
    });
    try {
      const { sha, bytes } = object('hung');
      const started = Date.now();
      const err: unknown = await sink({ client: hungClient, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 } })
        .putObject(sha, bytes)
        .catch((e: unknown) => e);
      expect(isMetasyncError(err, 'METASYNC_ERR_S3_CALL_FAILED')).toBe(true);
      expect((err as Error).message).toMatch(/HeadObject .* after 2 attempt/);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      hungClient.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => hung.close(resolve));
    }
  });
});
