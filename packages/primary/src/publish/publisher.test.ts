import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMetasyncError, sha256Hex } from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import type { ObjectStore } from '@metasync/store';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openJournal, type Journal } from '../journal/journal.js';
import type { Manifest } from '../journal/manifest.js';
import { createPublisher, type CommitInfo, type PrimaryPublisher } from './publisher.js';

const log = createLogger({ name: 'test', level: 'silent' });
let dir: string;
let journal: Journal;

/** An in-memory store: the coalescing tests measure the publisher, not the disk. */
function memoryStore(): ObjectStore & { syncs: number } {
  const objects = new Map<string, Buffer>();
  const store = {
    dir: '(memory)',
    syncs: 0,
    close: async () => undefined,
    async put({ raw }: { raw: Buffer }) {
      const sha256 = sha256Hex(raw);
      const created = !objects.has(sha256);
      objects.set(sha256, raw);
      return { sha256, size: raw.length, created };
    },
    async has(sha256: string) {
      return objects.has(sha256);
    },
    async presentAmong(sha256s: readonly string[]) {
      return new Set(sha256s.filter((sha256) => objects.has(sha256)));
    },
    async survey(sha256s: readonly string[]) {
      return { present: new Set(sha256s.filter((sha256) => objects.has(sha256))), withFiles: undefined };
    },
    async verify(sha256: string) {
      return objects.has(sha256);
    },
    async read(sha256: string) {
      return objects.get(sha256) as Buffer;
    },
    async readVariant(sha256: string) {
      return objects.get(sha256) as Buffer;
    },
    async readPreferred(sha256: string) {
      return { variant: 'identity' as const, bytes: objects.get(sha256) as Buffer };
    },
    pathOf: (sha256: string) => sha256,
    async sync() {
      store.syncs++;
    },
    unsynced: () => ({ files: 0, dirs: 0 }),
    addBrotli: async () => 0,
    lackingBrotli: async () => [],
    async remove(sha256: string) {
      return { removed: objects.delete(sha256), bytesFreed: 0 };
    },
    async listShard(shard: string) {
      return [...objects.keys()].filter((sha256) => sha256.startsWith(shard));
    },
  };
  return store;
}

async function setUp(
  options: { maxGenerationEntries?: number; now?: () => number; segmentMaxBytes?: number; distsUrl?: string } = {},
): Promise<{ publisher: PrimaryPublisher; commits: CommitInfo[]; manifest: Manifest }> {
  const { segmentMaxBytes, ...publisherOptions } = options;
  journal = (
    await openJournal({
      dir,
      keepGenerations: 100_000,
      baseSeq: 0,
      baseTime: 0,
      log,
      ...(segmentMaxBytes === undefined ? {} : { segmentMaxBytes }),
    })
  ).journal;
  const manifest: Manifest = new Map();
  const publisher = createPublisher({ store: memoryStore(), journal, manifest, log, ...publisherOptions });
  const commits: CommitInfo[] = [];
  publisher.onCommit((info) => commits.push(info));
  return { publisher, commits, manifest };
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-publisher-'));
});
afterEach(async () => {
  vi.useRealTimers();
  await journal.close();
  await rm(dir, { recursive: true, force: true });
});

const change = (path: string, text: string) => ({ path, content: Buffer.from(text) });

describe('publisher', () => {
  it('commits a lone change at once, without waiting on any timer', async () => {
    const { publisher } = await setUp();
    vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval', 'setImmediate'] });
    const startedMs = performance.now();
    const result = await publisher.submit([change('p2/acme/foo.json', '{"v":1}')], 'api');
    const elapsedMs = performance.now() - startedMs;
    expect(result).toEqual({ seq: 1 });
    expect(vi.getTimerCount()).toBe(0);
    // One journal append + fsync; generous bound for a loaded CI disk.
    expect(elapsedMs).toBeLessThan(250);
  });

  it('coalesces a burst of 10,000 path changes into a few generations, every change committed', async () => {
    const { publisher, commits, manifest } = await setUp({ maxGenerationEntries: 5_000 });
    const results = await Promise.all(
      Array.from({ length: 10_000 }, (_, i) => publisher.submit([change(`p2/acme/pkg${i}.json`, `{"n":${i}}`)], 'watch')),
    );
    expect(manifest.size).toBe(10_000);
    expect(commits.length).toBeLessThanOrEqual(5);
    expect(commits.every((commit) => commit.generation.entries.length <= 5_000)).toBe(true);
    expect(new Set(results.map((r) => r.seq)).size).toBe(commits.length);
    expect(publisher.headSeq()).toBe(commits.length);
  });

  it('names in manifestSeq the generation getEntry reflects, also while the journal head moved ahead during a segment rotation', async () => {
    // A 1-byte segment cap: every append rotates, awaiting file I/O after the journal head moved.
    const { publisher } = await setUp({ segmentMaxBytes: 1 });
    await publisher.submit([change('p2/acme/foo.json', '{"v":1}')], 'api');
    expect(publisher.manifestSeq()).toBe(1);
    const seen: { head: number; manifest: number; present: boolean }[] = [];
    let sampling = true;
    const sample = (): void => {
      seen.push({
        head: publisher.headSeq(),
        manifest: publisher.manifestSeq(),
        present: publisher.getEntry('p2/acme/foo.json') !== undefined,
      });
      if (sampling && seen.length < 100_000) setImmediate(sample);
    };
    sample();
    await publisher.submit([{ path: 'p2/acme/foo.json', deleted: true }], 'api');
    sampling = false;
    // The window exists (the head says 2 while the path is still there)...
    expect(seen.some((s) => s.head === 2 && s.present)).toBe(true);
    // ...and manifestSeq never claims the deleting generation while the path is still there.
    expect(seen.filter((s) => s.present).every((s) => s.manifest === 1)).toBe(true);
    expect(publisher.manifestSeq()).toBe(2);
  });

  it('puts all changes of one submit in one generation even above the generation cap', async () => {
    const { publisher, commits } = await setUp({ maxGenerationEntries: 10 });
    const changes = Array.from({ length: 25 }, (_, i) => change(`p2/acme/pkg${i}.json`, `{"n":${i}}`));
    await publisher.submit(changes, 'api');
    expect(commits).toHaveLength(1);
    expect(commits[0]!.generation.entries).toHaveLength(25);
  });

  it('rejects a whole submit with one invalid path and applies nothing', async () => {
    const { publisher, commits, manifest } = await setUp();
    const error = await publisher
      .submit([change('p2/acme/ok.json', '{}'), change('p2/../etc/passwd', 'x')], 'api')
      .catch((err: unknown) => err);
    expect(isMetasyncError(error, 'METASYNC_ERR_PATH_INVALID')).toBe(true);
    expect(commits).toHaveLength(0);
    expect(manifest.size).toBe(0);
  });

  it('treats unchanged content and deletion of an absent path as no-ops that resolve with the current seq', async () => {
    const { publisher, commits } = await setUp();
    await publisher.submit([change('p2/acme/foo.json', '{"v":1}')], 'api');
    expect(await publisher.submit([change('p2/acme/foo.json', '{"v":1}')], 'watch')).toEqual({ seq: 1 });
    expect(await publisher.submit([{ path: 'p2/acme/none.json', deleted: true }], 'api')).toEqual({ seq: 1 });
    expect(commits).toHaveLength(1);
  });

  it('sets each path mtime to the commit time of the generation that last changed it, strictly increasing', async () => {
    let clock = 1_000_000;
    const { publisher } = await setUp({ now: () => clock });
    await publisher.submit([change('p2/acme/a.json', '1'), change('p2/acme/b.json', '1')], 'api');
    await publisher.submit([change('p2/acme/b.json', '2')], 'api');
    expect(publisher.getEntry('p2/acme/a.json')?.mtime).toBe(1_000_000);
    expect(publisher.getEntry('p2/acme/b.json')?.mtime).toBe(1_000_001);
    clock = 2_000_000;
    await publisher.submit([{ path: 'p2/acme/a.json', deleted: true }], 'api');
    expect(publisher.getEntry('p2/acme/a.json')).toBeUndefined();
    expect(publisher.headTime()).toBe(2_000_000);
  });

  it('applies concurrent submits to the same path in submit order', async () => {
    const { publisher } = await setUp();
    await Promise.all([1, 2, 3, 4, 5].map((n) => publisher.submit([change('p2/acme/foo.json', `{"v":${n}}`)], 'api')));
    expect(publisher.getEntry('p2/acme/foo.json')?.sha256).toBe(sha256Hex('{"v":5}'));
  });

  it('refuses submits once closed, after finishing the queued ones', async () => {
    const { publisher } = await setUp();
    const queued = publisher.submit([change('p2/acme/foo.json', '{}')], 'api');
    await publisher.close();
    await expect(queued).resolves.toEqual({ seq: 1 });
    await expect(publisher.submit([change('p2/acme/bar.json', '{}')], 'api')).rejects.toThrow(/shutting down/);
  });
});

describe('publisher on a failed journal', () => {
  it('rejects the commit and reports the journal failure once', async () => {
    journal = (await openJournal({ dir, keepGenerations: 10, baseSeq: 0, baseTime: 0, log })).journal;
    const failure = new Error('EIO: fsync failed');
    const failing: Journal = { ...journal, append: () => Promise.reject(failure), failure: () => failure };
    const fatal: unknown[] = [];
    const publisher = createPublisher({
      store: memoryStore(),
      journal: failing,
      manifest: new Map(),
      log,
      onFatal: (err) => fatal.push(err),
    });
    await expect(publisher.submit([change('p2/acme/a.json', '1')], 'api')).rejects.toThrow(/EIO/);
    await expect(publisher.submit([change('p2/acme/b.json', '1')], 'api')).rejects.toThrow(/EIO/);
    expect(fatal).toEqual([failure]);
    expect(publisher.getEntry('p2/acme/a.json')).toBeUndefined();
  });

  it('stores p2 files of every source with the --dists-url mirror, and other paths as given', async () => {
    const { publisher, manifest } = await setUp({ distsUrl: 'https://repo.example.com' });
    const p2 = JSON.stringify({
      packages: {
        'acme/foo': [{ name: 'acme/foo', version: '1.0.0', dist: { type: 'zip', url: 'https://codehost/a.zip', reference: 'abc' } }],
      },
    });
    await publisher.submit([change('p2/acme/foo.json', p2)], 'watch');
    await publisher.submit([change('p2/acme/bar~dev.json', p2.replaceAll('foo', 'bar')), change('notes/p2.json', p2)], 'api');
    for (const path of ['p2/acme/foo.json', 'p2/acme/bar~dev.json']) {
      const stored = JSON.parse((await publisher.readObject(manifest.get(path)!.sha256)).toString()) as {
        packages: Record<string, Array<{ dist: { url: string; mirrors: unknown } }>>;
      };
      const dist = Object.values(stored.packages)[0]![0]!.dist;
      expect(dist.url).toBe('https://codehost/a.zip');
      expect(dist.mirrors).toEqual([{ url: 'https://repo.example.com/dists/%package%/%reference%.%type%', preferred: true }]);
    }
    expect((await publisher.readObject(manifest.get('notes/p2.json')!.sha256)).toString()).toBe(p2);
    // The same source bytes again are no change: the stored (transformed) bytes are compared.
    const seq = publisher.headSeq();
    expect(await publisher.submit([change('p2/acme/foo.json', p2)], 'watch')).toEqual({ seq });
    expect(sha256Hex(publisher.contentFor('p2/acme/foo.json', Buffer.from(p2)))).toBe(manifest.get('p2/acme/foo.json')!.sha256);
  });
});
