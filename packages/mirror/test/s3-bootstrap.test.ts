import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  HEADERS,
  SYNC_ROUTES,
  generateSigningKeyPem,
  isMetasyncError,
  s3ClientConfig,
  s3ObjectKey,
  s3SnapshotKey,
  sha256Hex,
  signBody,
  signingKeyFromPem,
  snapshotSchema,
} from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { openObjectStore } from '@metasync/store';
import { startS3Server, testS3Connection, TEST_S3_CREDENTIALS, TEST_S3_ENV, type S3TestServer } from '../../../test/helpers/s3-server.js';
import { waitFor } from '../../../test/helpers/wait-for.js';
import { loadConfig } from '../src/config.js';
import { openMirror, type Mirror } from '../src/mirror.js';
import { createS3BootstrapSource } from '../src/sync/s3-source.js';
import { startFakePrimary, type FakePrimary } from './fake-primary.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  vi.unstubAllEnvs();
});

/** What each wait here allows unless it says otherwise (waitFor's own default is 10 s). */
const timeoutMs = 5_000;

/** Copies the primary's signed snapshot and its objects into the bucket, laid out as the primary's S3 sink does. */
async function uploadSnapshot(
  primary: FakePrimary,
  client: S3Client,
  bucket: string,
  corrupt?: string,
  rewriteBody: (body: Buffer) => Buffer = (body) => body,
): Promise<number> {
  const response = await fetch(`${primary.url}${SYNC_ROUTES.snapshot}`);
  const body = Buffer.from(await response.arrayBuffer());
  const snapshot = snapshotSchema.parse(JSON.parse(body.toString('utf8')));
  for (const entry of snapshot.entries) {
    const object = Buffer.from(await (await fetch(`${primary.url}${SYNC_ROUTES.objects}/${entry.sha256}`)).arrayBuffer());
    const stored = entry.path === corrupt ? Buffer.from(object.toString('utf8').replace('1', '9')) : object;
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: s3ObjectKey('repo/', entry.sha256), Body: stored }));
  }
  await client.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: s3SnapshotKey('repo/', snapshot.seq),
      Body: rewriteBody(body),
      Metadata: {
        'metasync-signature': response.headers.get(HEADERS.signature)!,
        'metasync-snapshot-statement': response.headers.get(HEADERS.snapshotStatement)!,
      },
    }),
  );
  primary.requests.length = 0;
  return snapshot.seq;
}

async function setup(): Promise<{ primary: FakePrimary; s3: S3TestServer; client: S3Client; start(): Promise<Mirror> }> {
  const primary = await startFakePrimary();
  cleanups.push(() => primary.close());
  const s3 = await startS3Server(['mirror-boot']);
  cleanups.push(() => s3.stop());
  const client = new S3Client({ ...s3ClientConfig(testS3Connection(s3)), credentials: TEST_S3_CREDENTIALS });
  cleanups.push(() => Promise.resolve(client.destroy()));
  for (const [name, value] of Object.entries(TEST_S3_ENV)) vi.stubEnv(name, value);
  const start = async (): Promise<Mirror> => {
    const dataDir = await mkdtemp(join(tmpdir(), 'mirror-s3-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const pinned = `${primary.key.keyId}:${primary.key.publicKey}`;
    const argv = ['--primary', primary.url, '--data', dataDir, '--primary-key', pinned, '--poll-interval-ms', '100'];
    argv.push(
      '--bootstrap-s3-bucket',
      'mirror-boot',
      '--bootstrap-s3-prefix',
      'repo',
      '--bootstrap-s3-endpoint',
      s3.endpoint,
      '--bootstrap-s3-region',
      'us-east-1',
      '--bootstrap-s3-force-path-style',
    );
    const loaded = loadConfig(argv, {});
    if (loaded.help) throw new Error('unexpected help');
    const mirror = await openMirror(loaded.config, createLogger({ name: 'test', level: 'silent' }), { defaultMetrics: false });
    cleanups.push(() => mirror.close());
    mirror.startSync('http://127.0.0.1:1');
    return mirror;
  };
  return { primary, s3, client, start };
}

describe('mirror cold start from S3', () => {
  it('bootstraps from the bucket without fetching objects from the primary, then follows the primary', async () => {
    const { primary, client, start } = await setup();
    const files: Record<string, string> = { 'packages.json': '{"packages":[]}' };
    for (let i = 0; i < 20; i++) files[`p2/acme/pkg${i}.json`] = JSON.stringify({ v: i });
    primary.publish(files);
    primary.publish({ 'p2/acme/pkg1.json': '{"v":"1b"}' });
    const snapshotSeq = await uploadSnapshot(primary, client, 'mirror-boot');
    const mirror = await start();
    await waitFor(() => mirror.log.state.seq === snapshotSeq, { timeoutMs, what: `seq ${snapshotSeq}` });
    expect((await mirror.app.inject({ url: '/p2/acme/pkg1.json' })).body).toBe('{"v":"1b"}');
    expect(primary.requests.filter((r) => r.startsWith(SYNC_ROUTES.objects) || r.startsWith(SYNC_ROUTES.snapshot))).toEqual([]);
    primary.publish({ 'p2/acme/new.json': '{"v":"after"}' });
    await waitFor(() => mirror.log.state.seq === snapshotSeq + 1, { timeoutMs, what: 'the publish after bootstrap' });
    expect((await mirror.app.inject({ url: '/p2/acme/new.json' })).body).toBe('{"v":"after"}');
    expect(primary.requests).toContain(`${SYNC_ROUTES.changes}?since=${snapshotSeq}`);
  });

  it('refuses a corrupted object from the bucket and fetches that one from the primary', async () => {
    const { primary, client, start } = await setup();
    primary.publish({ 'p2/acme/good.json': '{"v":1,"ok":true}', 'p2/acme/bad.json': '{"v":1,"ok":false}' });
    await uploadSnapshot(primary, client, 'mirror-boot', 'p2/acme/bad.json');
    const mirror = await start();
    await waitFor(() => mirror.log.state.seq === 1, { timeoutMs, what: 'seq 1' });
    const served = await mirror.app.inject({ url: '/p2/acme/bad.json' });
    expect(served.body).toBe('{"v":1,"ok":false}');
    expect(primary.requests.filter((r) => r.startsWith(`${SYNC_ROUTES.objects}/`))).toEqual([
      `${SYNC_ROUTES.objects}/${sha256Hex('{"v":1,"ok":false}')}`,
    ]);
  });

  it('falls back to the primary when the bucket snapshot is not the body its signed statement names', async () => {
    const { primary, client, start } = await setup();
    primary.publish({ 'p2/acme/real.json': '{"v":"real"}' });
    await uploadSnapshot(primary, client, 'mirror-boot', undefined, (body) =>
      Buffer.from(body.toString('utf8').replace('"p2/acme/real.json"', '"p2/acme/fake.json"')),
    );
    const mirror = await start();
    await waitFor(() => mirror.log.state.seq === 1, { timeoutMs, what: 'seq 1' });
    expect((await mirror.app.inject({ url: '/p2/acme/real.json' })).body).toBe('{"v":"real"}');
    expect(primary.requests.some((r) => r.startsWith(SYNC_ROUTES.snapshot))).toBe(true);
  });

  it('falls back to the primary when the bucket holds no snapshot', async () => {
    const { primary, start } = await setup();
    primary.publish({ 'p2/acme/only.json': '{"v":1}' });
    const mirror = await start();
    await waitFor(() => mirror.log.state.seq === 1, { timeoutMs, what: 'seq 1' });
    expect((await mirror.app.inject({ url: '/p2/acme/only.json' })).body).toBe('{"v":1}');
    expect(primary.requests.some((r) => r.startsWith(SYNC_ROUTES.snapshot))).toBe(true);
  });

  it('falls back to the primary when the bucket snapshot is forged, and asks the bucket only once', async () => {
    const { primary, client, s3, start } = await setup();
    primary.publish({ 'p2/acme/real.json': '{"v":"real"}' });
    const forged = Buffer.from(JSON.stringify({ kind: 'snapshot', seq: 1, time: 1, entries: [] }));
    const forger = signingKeyFromPem(generateSigningKeyPem());
    await client.send(
      new PutObjectCommand({
        Bucket: 'mirror-boot',
        Key: s3SnapshotKey('repo/', 1),
        Body: forged,
        Metadata: { 'metasync-signature': signBody(forger, forged) },
      }),
    );
    const mirror = await start();
    await waitFor(() => mirror.log.state.seq === 1, { timeoutMs, what: 'seq 1' });
    expect((await mirror.app.inject({ url: '/p2/acme/real.json' })).body).toBe('{"v":"real"}');

    const dataDir = await mkdtemp(join(tmpdir(), 'mirror-s3-source-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const source = createS3BootstrapSource({
      config: {
        bootstrapS3Bucket: 'mirror-boot',
        bootstrapS3Prefix: 'repo/',
        bootstrapS3Region: 'us-east-1',
        bootstrapS3Endpoint: s3.endpoint,
        bootstrapS3ForcePathStyle: true,
        bootstrapS3Checksums: 'when-required',
      },
      store: await openObjectStore({ dir: join(dataDir, 'objects') }),
      logger: createLogger({ name: 'test', level: 'silent' }),
      concurrency: 4,
    })!;
    cleanups.push(() => Promise.resolve(source.close()));
    const trusted = [{ keyId: primary.key.keyId, publicKey: primary.key.publicKey, active: true }];
    const first: unknown = await source.bootstrap(trusted, 0).catch((e: unknown) => e);
    expect(isMetasyncError(first, 'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY')).toBe(true);
    await expect(source.bootstrap(trusted, 0)).resolves.toBeUndefined();
  });
});
