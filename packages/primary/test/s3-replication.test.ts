import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  isMetasyncError,
  s3ClientConfig,
  s3ObjectKey,
  s3SnapshotKey,
  sha256Hex,
  snapshotSchema,
  verifySnapshotBody,
} from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { startS3Server, testS3Connection, TEST_S3_CREDENTIALS, type S3TestServer } from '../../../test/helpers/s3-server.js';
import { openPrimaryCore, type PrimaryCore } from '../src/data-dir.js';
import { createS3Replication, type S3Replication } from '../src/s3/replication.js';
import { createS3Sink } from '../src/s3/sink.js';

const log = createLogger({ name: 's3-replication-test', level: 'silent' });
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  s3: S3TestServer;
  client: S3Client;
  core: PrimaryCore;
  replication: S3Replication;
  /** False = the primary runs without S3 (as before an operator enables it). */
  s3Enabled: { value: boolean };
}

async function setup(bucket: string, createBucket = true): Promise<Setup> {
  const s3Enabled = { value: true };
  const s3 = await startS3Server(createBucket ? [bucket] : []);
  cleanups.push(() => s3.stop());
  const client = new S3Client({ ...s3ClientConfig(testS3Connection(s3)), credentials: TEST_S3_CREDENTIALS });
  cleanups.push(() => Promise.resolve(client.destroy()));
  const dataDir = await mkdtemp(join(tmpdir(), 'primary-s3-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const sink = createS3Sink({ client, bucket, prefix: 'repo', log, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 } });
  const core = await openPrimaryCore({
    dataDir,
    signingKeyFile: undefined,
    keepGenerations: 100,
    snapshotEveryGenerations: 1000,
    snapshotIntervalMs: 60_000,
    log,
    beforeCommit: (generation) => (s3Enabled.value ? replication.beforeCommit(generation) : Promise.resolve()),
  });
  cleanups.push(() => core.close());
  const replication = createS3Replication({
    sink,
    readObject: (sha) => core.publisher.readObject(sha),
    snapshots: core.snapshots,
    everyGenerations: 1000,
    intervalMs: 60_000,
    log,
  });
  cleanups.push(() => replication.close());
  return { s3, client, core, replication, s3Enabled };
}

async function read(client: S3Client, bucket: string, key: string): Promise<{ body: Buffer; metadata: Record<string, string> }> {
  const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return { body: Buffer.from(await answer.Body!.transformToByteArray()), metadata: answer.Metadata ?? {} };
}

describe('primary S3 write-through', () => {
  it('has every object of a generation in the bucket by the time the publish resolves', async () => {
    const { client, core } = await setup('wt');
    const files = Array.from({ length: 12 }, (_, i) => ({ path: `p2/acme/p${i}.json`, content: Buffer.from(JSON.stringify({ i })) }));
    const { seq } = await core.publisher.submit(files, 'api');
    expect(seq).toBe(1);
    for (const file of files)
      expect((await read(client, 'wt', s3ObjectKey('repo/', sha256Hex(file.content)))).body.equals(file.content)).toBe(true);
  });

  it('does not commit (or announce) a generation whose objects cannot be made durable in S3', async () => {
    const { s3, core } = await setup('late', false);
    const err: unknown = await core.publisher
      .submit([{ path: 'p2/acme/a.json', content: Buffer.from('{"a":1}') }], 'api')
      .catch((e: unknown) => e);
    expect(isMetasyncError(err, 'METASYNC_ERR_S3_CALL_FAILED')).toBe(true);
    expect((err as Error).message).toContain('s3://late/repo/objects/');
    expect(core.publisher.headSeq()).toBe(0);
    expect(core.publisher.getEntry('p2/acme/a.json')).toBeUndefined();
    await s3.createBucket('late');
    await expect(core.publisher.submit([{ path: 'p2/acme/a.json', content: Buffer.from('{"a":1}') }], 'api')).resolves.toEqual({ seq: 1 });
  });

  it('uploads the signed head snapshot after its objects, backfilling objects published before S3 was enabled', async () => {
    const { client, core, replication, s3Enabled } = await setup('snap');
    s3Enabled.value = false;
    await core.publisher.submit([{ path: 'p2/acme/old.json', content: Buffer.from('{"old":true}') }], 'api');
    const oldKey = s3ObjectKey('repo/', sha256Hex('{"old":true}'));
    await expect(read(client, 'snap', oldKey)).rejects.toMatchObject({ name: 'NoSuchKey' });
    s3Enabled.value = true;
    await core.publisher.submit([{ path: 'p2/acme/new.json', content: Buffer.from('{"new":true}') }], 'api');
    await expect(replication.uploadSnapshot()).resolves.toBe(2);
    const stored = await read(client, 'snap', s3SnapshotKey('repo/', 2));
    const signed = { signature: stored.metadata['metasync-signature'], statement: stored.metadata['metasync-snapshot-statement'] };
    expect(signed.statement).toBeDefined();
    verifySnapshotBody(stored.body, signed, {
      keys: [{ keyId: core.key.keyId, publicKey: core.key.publicKey, active: true }],
      nowMs: Date.now(),
      what: 'snapshot',
    });
    const snapshot = snapshotSchema.parse(JSON.parse(stored.body.toString('utf8')));
    expect(snapshot.entries.map((e) => e.path)).toEqual(['p2/acme/new.json', 'p2/acme/old.json']);
    for (const entry of snapshot.entries)
      expect(sha256Hex((await read(client, 'snap', s3ObjectKey('repo/', entry.sha256))).body)).toBe(entry.sha256);
  });
});
