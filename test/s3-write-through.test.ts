import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openObjectStore } from '@metasync/store';
import { sha256Hex } from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { createPrimaryS3, openPrimaryCore } from '@metasync/primary';
import { createS3BootstrapSource } from '@metasync/mirror';
import { startS3Server, TEST_S3_ENV } from './helpers/s3-server.js';

const log = createLogger({ name: 's3-write-through', level: 'silent' });
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  vi.unstubAllEnvs();
});

async function tempDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), name));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

describe('S3 write-through from the primary, bootstrap of a new mirror store from the bucket', () => {
  it("a new mirror's store gets every published object, verified, from the bucket alone", async () => {
    const s3 = await startS3Server(['metasync']);
    cleanups.push(() => s3.stop());
    for (const [name, value] of Object.entries(TEST_S3_ENV)) vi.stubEnv(name, value);

    const primaryS3 = (await createPrimaryS3({
      config: {
        bucket: 'metasync',
        prefix: 'eu/',
        region: 'us-east-1',
        endpoint: s3.endpoint,
        forcePathStyle: true,
        checksumMode: 'when-required',
        uploadChecksum: true,
        conditionalWrites: false,
        concurrency: 8,
      },
      log,
      snapshotEveryGenerations: 1000,
      snapshotIntervalMs: 60_000,
    }))!;
    const core = await openPrimaryCore({
      dataDir: await tempDir('primary-'),
      signingKeyFile: undefined,
      keepGenerations: 100,
      snapshotEveryGenerations: 1000,
      snapshotIntervalMs: 60_000,
      log,
      beforeCommit: (generation) => primaryS3.beforeCommit(generation),
    });
    cleanups.push(() => core.close());
    primaryS3.start(core);
    cleanups.push(() => primaryS3.close());

    const published = new Map<string, Buffer>();
    for (let round = 0; round < 3; round++) {
      const files = Array.from({ length: 15 }, (_, i) => ({
        path: `p2/vendor/pkg${i}.json`,
        content: Buffer.from(JSON.stringify({ round, i })),
      }));
      await core.publisher.submit(files, 'api');
      for (const file of files) published.set(file.path, file.content);
    }
    await expect(primaryS3.replication!.uploadSnapshot()).resolves.toBe(3);

    const store = await openObjectStore({ dir: join(await tempDir('mirror-'), 'objects') });
    const source = createS3BootstrapSource({
      config: {
        bootstrapS3Bucket: 'metasync',
        bootstrapS3Prefix: 'eu/',
        bootstrapS3Region: 'us-east-1',
        bootstrapS3Endpoint: s3.endpoint,
        bootstrapS3ForcePathStyle: true,
        bootstrapS3Checksums: 'when-required',
      },
      store,
      logger: log,
      concurrency: 8,
    })!;
    cleanups.push(() => Promise.resolve(source.close()));
    const snapshot = await source.bootstrap([{ keyId: core.key.keyId, publicKey: core.key.publicKey, active: true }], 0);
    expect(snapshot?.seq).toBe(3);
    for (const entry of snapshot!.entries) {
      const bytes = await readFile(store.pathOf(entry.sha256));
      expect(sha256Hex(bytes)).toBe(entry.sha256);
      expect(bytes.equals(published.get(entry.path)!)).toBe(true);
    }
    expect(snapshot!.entries).toHaveLength(published.size);
  });
});
