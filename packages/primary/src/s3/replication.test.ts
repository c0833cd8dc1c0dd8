import { createLogger } from '@metasync/shared/daemon';
import { describe, expect, it } from 'vitest';
import { createS3Replication } from './replication.js';
import type { SignedSnapshot } from '../journal/snapshot-file.js';
import type { PutSnapshotOptions, S3Sink } from './sink.js';

const log = createLogger({ name: 's3-replication-unit', level: 'silent' });

function fakeSink(): { sink: S3Sink; uploads: number[]; checked: boolean[]; release: () => void; durableCalls: string[][] } {
  const uploads: number[] = [];
  const checked: boolean[] = [];
  const durableCalls: string[][] = [];
  let releaseCurrent: () => void = () => undefined;
  const sink = {
    bucket: 'b',
    prefix: '',
    putObject: () => Promise.resolve('stored' as const),
    awaitDurable: (shas: Iterable<string>) => {
      durableCalls.push([...shas]);
      return Promise.resolve({ uploaded: 0 });
    },
    putSnapshot: (options: PutSnapshotOptions) =>
      new Promise((resolve) => {
        uploads.push(options.snapshot.seq);
        checked.push(options.objectsDurable !== true);
        releaseCurrent = () => resolve({ key: `k${options.snapshot.seq}`, created: true, objectsUploaded: 0 });
      }),
    stats: () => ({ stored: 0, existed: 0, failed: 0, pending: 0 }),
    drain: () => Promise.resolve(),
  } as unknown as S3Sink;
  return { sink, uploads, checked, durableCalls, release: () => releaseCurrent() };
}

/** What replication reads of a signed snapshot: its seq (the sink, faked here, reads the rest). */
const signedAt = (seq: number): SignedSnapshot => ({ seq, time: 0, path: '', length: 0, sha256: '', statement: '', signature: 'sig' });

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('S3 replication', () => {
  it('uploads the head again when commits arrive during a snapshot upload', async () => {
    const fake = fakeSink();
    let head = 1;
    const replication = createS3Replication({
      sink: fake.sink,
      readObject: () => Promise.reject(new Error('not used')),
      snapshots: { current: async () => signedAt(head) },
      everyGenerations: 1,
      intervalMs: 60_000,
      log,
    });
    replication.committed(1);
    await flush();
    expect(fake.uploads).toEqual([1]);
    head = 2;
    replication.committed(2);
    head = 3;
    replication.committed(3);
    await flush();
    expect(fake.uploads).toEqual([1]);
    fake.release();
    await flush();
    await flush();
    expect(fake.uploads).toEqual([1, 3]);
    // The first upload of a start checks every object; later ones rely on each commit's own barrier.
    expect(fake.checked).toEqual([true, false]);
    fake.release();
    await replication.close();
    expect(replication.lastSnapshotSeq()).toBe(3);
  });

  it('waits for exactly the new objects of a generation, not its deletions', async () => {
    const fake = fakeSink();
    const replication = createS3Replication({
      sink: fake.sink,
      readObject: () => Promise.reject(new Error('not used')),
      snapshots: { current: async () => signedAt(0) },
      everyGenerations: 100,
      intervalMs: 60_000,
      log,
    });
    const sha = 'a'.repeat(64);
    await replication.beforeCommit({
      seq: 1,
      entries: [
        { path: 'p2/a/b.json', sha256: sha, size: 1, mtime: 1 },
        { path: 'p2/a/c.json', deleted: true, mtime: 1 },
      ],
    });
    await replication.beforeCommit({ seq: 2, entries: [{ path: 'p2/a/c.json', deleted: true, mtime: 2 }] });
    expect(fake.durableCalls).toEqual([[sha]]);
    await replication.close();
  });

  it('checks a large generation in slices the sink handles per object, never one bucket listing', async () => {
    const fake = fakeSink();
    const replication = createS3Replication({
      sink: fake.sink,
      readObject: () => Promise.reject(new Error('not used')),
      snapshots: { current: async () => signedAt(0) },
      everyGenerations: 100,
      intervalMs: 60_000,
      log,
    });
    const entries = Array.from({ length: 600 }, (_, i) => ({
      path: `p2/a/p${i}.json`,
      sha256: i.toString(16).padStart(64, '0'),
      size: 1,
      mtime: 1,
    }));
    await replication.beforeCommit({ seq: 1, entries });
    expect(fake.durableCalls.map((call) => call.length)).toEqual([256, 256, 88]);
    expect(fake.durableCalls.flat()).toEqual(entries.map((e) => e.sha256));
    await replication.close();
  });

  it('does not let a snapshot upload in progress hold up shutdown past closeTimeoutMs', async () => {
    const fake = fakeSink();
    const replication = createS3Replication({
      sink: fake.sink,
      readObject: () => Promise.reject(new Error('not used')),
      snapshots: { current: async () => signedAt(5) },
      everyGenerations: 1,
      intervalMs: 60_000,
      closeTimeoutMs: 20,
      log,
    });
    replication.committed(5);
    await flush();
    expect(fake.uploads).toEqual([5]);
    const started = Date.now();
    await replication.close();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(replication.lastSnapshotSeq()).toBe(0);
    fake.release();
  });
});
