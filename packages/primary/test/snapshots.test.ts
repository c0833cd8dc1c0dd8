import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { generateSigningKeyPem, signingKeyFromPem, snapshotSchema, verifySnapshotBody } from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { decodeRecords } from '@metasync/shared/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/helpers/wait-for.js';
import { openPrimaryCore, type PrimaryCore, type PrimaryCoreOptions } from '../src/data-dir.js';
import { GENERATED_KEY_FILE } from '../src/keys/signing-key.js';
import { loadLatestSnapshot, readSnapshotBody } from '../src/journal/snapshots.js';
import { TEST_TOKEN, startTestPrimary, type TestPrimary } from './primary-fixture.js';

let dataDir: string;
let core: PrimaryCore | undefined;
let primary: TestPrimary | undefined;
let warnings: string[];

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'metasync-snapshots-'));
  warnings = [];
});
afterEach(async () => {
  await core?.close();
  core = undefined;
  await primary?.close();
  primary = undefined;
  await rm(dataDir, { recursive: true, force: true });
});

async function open(options: Partial<PrimaryCoreOptions> = {}): Promise<PrimaryCore> {
  const log = createLogger(
    { name: 'test', level: 'warn' },
    {
      write: (line: string) => void warnings.push((JSON.parse(line) as { msg: string }).msg),
    },
  );
  core = await openPrimaryCore({
    dataDir,
    signingKeyFile: undefined,
    keepGenerations: 1000,
    snapshotEveryGenerations: 1000,
    snapshotIntervalMs: 3_600_000,
    log,
    ...options,
  });
  return core;
}

const publish = (c: PrimaryCore, i: number) =>
  c.publisher.submit([{ path: `p2/acme/p${i}.json`, content: Buffer.from(`{"i":${i}}`) }], i % 2 === 0 ? 'api' : 'watch');

describe('snapshots and retention', () => {
  it('writes a signed snapshot file every N generations that verifies with the primary key', async () => {
    const c = await open({ snapshotEveryGenerations: 3 });
    for (let i = 1; i <= 4; i++) await publish(c, i);
    await waitFor(() => c.snapshots.lastSnapshotSeq() >= 3, { timeoutMs: 5_000, what: 'snapshot at seq 3' });
    const loaded = await loadLatestSnapshot(join(dataDir, 'snapshots'));
    expect(loaded?.seq).toBeGreaterThanOrEqual(3);
    expect(loaded?.manifest.get('p2/acme/p2.json')?.origin).toBe('api');
    expect(loaded?.manifest.get('p2/acme/p1.json')?.origin).toBe('watch');
    const current = await c.snapshots.current();
    const body = await readSnapshotBody(current);
    const statement = verifySnapshotBody(body, current, {
      keys: [{ keyId: c.key.keyId, publicKey: c.key.publicKey, active: true }],
      nowMs: Date.now(),
      what: 'snapshot',
    });
    expect(statement).toMatchObject({ seq: current.seq, length: body.length, sha256: current.sha256 });
    expect(snapshotSchema.parse(JSON.parse(body.toString())).entries).toHaveLength(4);
  });

  it('serves one file a seq and one gzip made once of it, apart from the replay bases, and removes both once replaced', async () => {
    const c = await open({ snapshotKeepFiles: 1 });
    await publish(c, 1);
    const first = await c.snapshots.current();
    expect(first.path).toBe(join(dataDir, 'snapshots', 'served', 'snapshot-0000000000000001.bin'));
    const gzip = await c.snapshots.gzipped(first);
    const made = await stat(gzip.path);
    expect(await c.snapshots.current()).toBe(first);
    expect(await c.snapshots.gzipped(first)).toEqual(gzip);
    expect((await stat(gzip.path)).mtimeMs).toBe(made.mtimeMs); // not made again
    expect(gunzipSync(await readFile(gzip.path)).equals(await readSnapshotBody(first))).toBe(true);
    expect(made.size).toBe(gzip.length);
    // A mirror's ask is no replay base: it neither counts against --snapshot-keep nor moves lastSnapshotSeq.
    expect(await loadLatestSnapshot(join(dataDir, 'snapshots'))).toBeUndefined();
    expect(c.snapshots.lastSnapshotSeq()).toBe(0);
    await publish(c, 2);
    const second = await c.snapshots.current();
    expect(second.seq).toBe(2);
    await c.snapshots.gzipped(second);
    // The first stays a while (RETIRE_AFTER_MS, snapshot-served.test.ts): a request may be about to open it.
    const served = (await readdir(join(dataDir, 'snapshots', 'served'))).filter((name) => !name.startsWith('.'));
    expect(served).toHaveLength(4);
  });

  it('drops journal segments a snapshot covers and restarts from the snapshot with the same state', async () => {
    const c = await open({ keepGenerations: 5, segmentMaxBytes: 400 });
    for (let i = 1; i <= 30; i++) await publish(c, i);
    const segmentsBefore = (await readdir(join(dataDir, 'journal'))).length;
    await c.snapshots.take();
    const segmentsAfter = (await readdir(join(dataDir, 'journal'))).length;
    expect(segmentsAfter).toBeLessThan(segmentsBefore);
    await publish(c, 31);
    const before = new Map(c.publisher.entries());
    await c.close();
    core = undefined;
    const reopened = await open({ keepGenerations: 5, segmentMaxBytes: 400 });
    expect(reopened.publisher.headSeq()).toBe(31);
    expect(new Map(reopened.publisher.entries())).toEqual(before);
    expect(reopened.publisher.journal.oldestSeq()).toBe(26);
  });

  it('creates a 0600 signing key in the data dir once, warns, and reuses it', async () => {
    const first = await open();
    const keyId = first.key.keyId;
    expect((await stat(join(dataDir, GENERATED_KEY_FILE))).mode & 0o777).toBe(0o600);
    expect(warnings.filter((w) => w.includes('signing-key-file'))).toHaveLength(1);
    await first.close();
    core = undefined;
    expect((await open()).key.keyId).toBe(keyId);
  });

  it('signs with --signing-key-file when given and creates no key', async () => {
    const pem = generateSigningKeyPem();
    const keyFile = join(dataDir, '..', `${Date.now()}-key.pem`);
    await writeFile(keyFile, pem, { mode: 0o600 });
    try {
      const c = await open({ signingKeyFile: keyFile });
      expect(c.key.keyId).toBe(signingKeyFromPem(pem).keyId);
      await expect(stat(join(dataDir, GENERATED_KEY_FILE))).rejects.toThrow();
      expect(warnings).toHaveLength(0);
    } finally {
      await rm(keyFile, { force: true });
    }
  });

  it('writes a snapshot on demand through the admin call, which needs the publish token', async () => {
    primary = await startTestPrimary();
    await primary.core.publisher.submit([{ path: 'p2/acme/a.json', content: Buffer.from('1') }], 'api');
    expect((await primary.app.inject({ method: 'POST', url: '/admin/snapshot' })).statusCode).toBe(401);
    expect(
      (await primary.app.inject({ method: 'POST', url: '/admin/snapshot', headers: { authorization: 'Bearer wrong' } })).statusCode,
    ).toBe(401);
    const response = await primary.app.inject({
      method: 'POST',
      url: '/admin/snapshot',
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ seq: 1 });
    expect((await loadLatestSnapshot(join(primary.dataDir, 'snapshots')))?.seq).toBe(1);
  });
});

describe('signed snapshot served to mirrors', () => {
  it('signs a head once, whether a mirror asked for it or a file was due: the file due is a link to the one served', async () => {
    const c = await open({ snapshotEveryGenerations: 1_000_000 });
    for (let i = 1; i <= 3; i++) await publish(c, i);
    const { snapshots } = c;
    const written = await snapshots.take();
    expect(written.path).toBe(join(dataDir, 'snapshots', 'snapshot-0000000000000003.bin'));
    const served = await snapshots.current();
    expect((await stat(served.path)).ino).toBe((await stat(written.path)).ino);
    await publish(c, 4);
    const again = await snapshots.current();
    expect(again.seq).toBe(served.seq + 1);
    const rewritten = await snapshots.take();
    expect((await stat(rewritten.path)).ino).toBe((await stat(again.path)).ino);
    expect(await snapshots.current()).toBe(again);
    expect(snapshots.lastSnapshotSeq()).toBe(4);
    expect(decodeRecords(await readFile(rewritten.path)).records[0]!.equals(await readSnapshotBody(again))).toBe(true);
  });

  it('signs the same head again once a key is rotated in: mirrors past the overlap refuse the old key', async () => {
    const c = await open({ snapshotEveryGenerations: 1_000_000 });
    await publish(c, 1);
    const before = await c.snapshots.current();
    await c.keyRing.rotate({ overlapMs: 60_000 });
    const keyIdOf = (signature: string): string => signature.split('.')[0]!;
    const after = await c.snapshots.current();
    expect(after.seq).toBe(before.seq);
    expect(keyIdOf(after.signature)).toBe(c.keyRing.active().keyId);
    expect(keyIdOf(after.signature)).not.toBe(keyIdOf(before.signature));
    const { path } = await c.snapshots.take();
    const meta = JSON.parse(decodeRecords(await readFile(path)).records[1]!.toString('utf8')) as { signature: string };
    expect(keyIdOf(meta.signature)).toBe(c.keyRing.active().keyId);
  });
});

describe('data dir lock', () => {
  it('refuses a second primary on the same data dir and frees it on close', async () => {
    const first = await open();
    await expect(
      openPrimaryCore({
        dataDir,
        signingKeyFile: undefined,
        keepGenerations: 10,
        snapshotEveryGenerations: 10,
        snapshotIntervalMs: 60_000,
        log: createLogger({ name: 't', level: 'silent' }),
      }),
    ).rejects.toThrow(/in use by another primary/);
    await first.close();
    core = undefined;
    await expect(open()).resolves.toBeDefined();
  });

  it('takes over a lock left by a dead process', async () => {
    await writeFile(join(dataDir, 'primary.lock'), '2147483646\n');
    await expect(open()).resolves.toBeDefined();
  });
});
