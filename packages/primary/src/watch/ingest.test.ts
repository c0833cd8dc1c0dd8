import { sha256Hex } from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ManifestEntry, Origin, Publisher, SourceChange } from '../publish/publisher.js';
import { createSourceIngest, type SourceIngest } from './ingest.js';
import { prepareRead, type PreparedRead } from './prepare.js';

/** An in-memory publisher: records each submit, commits after `commitMs`. */
function fakePublisher(commitMs = 5) {
  const manifest = new Map<string, ManifestEntry>();
  const submits: SourceChange[][] = [];
  let seq = 0;
  const publisher: Publisher = {
    async submit(changes: readonly SourceChange[], origin: Origin) {
      submits.push([...changes]);
      await new Promise((resolve) => setTimeout(resolve, commitMs));
      seq++;
      for (const change of changes) {
        if ('deleted' in change) manifest.delete(change.path);
        else manifest.set(change.path, { sha256: sha256Hex(change.content), size: change.content.length, mtime: seq, origin });
      }
      return { seq };
    },
    getEntry: (path) => manifest.get(path),
    entries: () => manifest.entries(),
    pathsFrom: (origin) => [...manifest].filter(([, entry]) => entry.origin === origin).map(([path]) => path),
    readObject: () => Promise.reject(new Error('not used')),
    headSeq: () => seq,
    contentFor: (_path, content) => content,
    refusesPath: () => false,
  };
  return { publisher, submits, manifest };
}

let files: Map<string, string>;
let logged: Array<Record<string, unknown>>;
let ingest: SourceIngest;
let fake: ReturnType<typeof fakePublisher>;

function start(options: { stabilityWindowMs?: number; jsonSettleMs?: number; maxBatchPaths?: number } = {}): void {
  fake = fakePublisher();
  const log = createLogger(
    { name: 'test', level: 'info' },
    { write: (line: string) => void logged.push(JSON.parse(line) as Record<string, unknown>) },
  );
  ingest = createSourceIngest({
    publisher: fake.publisher,
    log,
    read: async (path): Promise<PreparedRead> => {
      const content = files.get(path);
      return prepareRead(
        path,
        content === undefined
          ? { kind: 'missing' }
          : { kind: 'file', file: { bytes: Buffer.from(content), size: content.length, mtimeMs: content.length, ino: 1 } },
      );
    },
    stat: async (path) => {
      const content = files.get(path);
      return content === undefined ? undefined : { size: content.length, mtimeMs: content.length, ino: 1 };
    },
    ...options,
  });
}

function write(path: string, content: string): void {
  files.set(path, content);
  ingest.touch(path);
}

const published = (path: string) => fake.submits.flat().filter((c) => c.path === path);

beforeEach(() => {
  vi.useFakeTimers();
  files = new Map();
  logged = [];
});

afterEach(async () => {
  const closing = ingest.close();
  await vi.runAllTimersAsync();
  await closing;
  vi.useRealTimers();
});

describe('source ingest', () => {
  it('lets a walk waiting for room go once closed: a closed settler keeps its states, and shutdown must not wait for them', async () => {
    start({ stabilityWindowMs: 60_000 });
    ingest.hold();
    // Non-JSON files wait out their stability window: each holds a pending state until then.
    for (let i = 0; i < 40; i++) write(`dists/a${i}.zip`, 'zip');
    let roomed = false;
    const waiting = ingest.roomFor(40).then(() => (roomed = true));
    await vi.advanceTimersByTimeAsync(10);
    expect(roomed).toBe(false);
    const closing = ingest.close();
    await vi.runAllTimersAsync();
    await closing;
    await waiting;
    expect(roomed).toBe(true);
  });

  it('publishes a JSON file written in three chunks 50 ms apart once, complete', async () => {
    start();
    const full = JSON.stringify({ packages: { 'acme/foo': [{ version: '1.0.0' }] }, minified: 'composer/2.0' });
    const thirds = [full.slice(0, 20), full.slice(0, 40), full];
    write('p2/acme/foo.json', thirds[0]!);
    await vi.advanceTimersByTimeAsync(50);
    write('p2/acme/foo.json', thirds[1]!);
    await vi.advanceTimersByTimeAsync(50);
    write('p2/acme/foo.json', thirds[2]!);
    await vi.advanceTimersByTimeAsync(100);
    const changes = published('p2/acme/foo.json');
    expect(changes).toHaveLength(1);
    expect((changes[0] as { content: Buffer }).content.toString()).toBe(full);
  });

  it('roomFor resolves only once fewer than the limit of paths are pending, and every touched file still lands', async () => {
    start();
    for (let i = 0; i < 20; i++) files.set(`p2/acme/p${i}.json`, `{"packages":{"acme/p${i}":[]}}`);
    for (let i = 0; i < 20; i++) ingest.touch(`p2/acme/p${i}.json`, { recheck: false });
    let roomy = false;
    void ingest.roomFor(5).then(() => (roomy = true));
    expect(roomy).toBe(false); // 20 reads queued
    await vi.advanceTimersByTimeAsync(10);
    expect(roomy).toBe(true);
    const idle = ingest.idle();
    await vi.advanceTimersByTimeAsync(100);
    await idle;
    expect(new Set(fake.submits.flat().map((c) => c.path)).size).toBe(20);
    await expect(ingest.roomFor(1)).resolves.toBeUndefined(); // nothing pending now
  });

  it('publishes a complete JSON file on the next turn, without waiting for a window', async () => {
    start({ stabilityWindowMs: 10_000 });
    write('packages.json', '{"packages":[]}');
    await vi.advanceTimersByTimeAsync(0);
    expect(fake.submits).toHaveLength(1);
  });

  it('finds the end of a JSON write whose event was lost, by re-reading', async () => {
    start();
    write('p2/acme/foo.json', '{"packages":');
    await vi.advanceTimersByTimeAsync(10);
    files.set('p2/acme/foo.json', '{"packages":{"acme/foo":[]}}'); // no event
    await vi.advanceTimersByTimeAsync(500);
    expect(published('p2/acme/foo.json')).toHaveLength(1);
  });

  it('catches a complete rewrite whose event was lost, by stat after the last read', async () => {
    start();
    write('p2/acme/foo.json', '{"packages":{"acme/foo":[]}}');
    await vi.advanceTimersByTimeAsync(5);
    files.set('p2/acme/foo.json', '{"packages":{"acme/foo":[{"version":"1.0.0"}]}}'); // rename-over, no event
    await vi.advanceTimersByTimeAsync(40);
    expect(published('p2/acme/foo.json')).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(60);
    files.set('p2/acme/foo.json', '{"packages":{"acme/foo":[{"version":"2.0.10"}]}}'); // later, still no event (size differs: the fake mtime is the length)
    await vi.advanceTimersByTimeAsync(200);
    expect(published('p2/acme/foo.json')).toHaveLength(3);
  });

  it('refuses JSON that never parses and keeps the published version', async () => {
    start({ jsonSettleMs: 1_000 });
    write('include/all.json', '{"ok":true}');
    await vi.advanceTimersByTimeAsync(100);
    write('include/all.json', '{"broken":');
    await vi.advanceTimersByTimeAsync(3_000);
    expect(published('include/all.json')).toHaveLength(1);
    expect(logged.some((l) => l.msg === 'source file refused' && (l.err as { code?: string }).code === 'METASYNC_ERR_SOURCE_REFUSED')).toBe(
      true,
    );
  });

  it('waits for the stability window before publishing a non-JSON file', async () => {
    start({ stabilityWindowMs: 200 });
    write('dist/readme.txt', 'part one');
    await vi.advanceTimersByTimeAsync(150);
    write('dist/readme.txt', 'part one, part two');
    await vi.advanceTimersByTimeAsync(150);
    expect(fake.submits).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(100);
    expect(published('dist/readme.txt').map((c) => (c as { content: Buffer }).content.toString())).toEqual(['part one, part two']);
  });

  it('coalesces a burst into far fewer submits than files, losing none', async () => {
    start({ maxBatchPaths: 200 });
    for (let i = 0; i < 1_000; i++) write(`p2/v/p${i}.json`, `{"packages":{"v/p${i}":[]}}`);
    await vi.advanceTimersByTimeAsync(1_000);
    await ingest.idle();
    expect(fake.manifest.size).toBe(1_000);
    expect(fake.submits.length).toBeLessThan(12);
  });

  it('deletes only what it published, and a re-created file wins over its deletion', async () => {
    start();
    write('include/b.json', '{}');
    await vi.advanceTimersByTimeAsync(20);
    files.delete('include/b.json');
    ingest.remove('include/b.json');
    ingest.remove('include/never-seen.json');
    write('include/b.json', '{"again":1}');
    await vi.advanceTimersByTimeAsync(20);
    expect(fake.manifest.has('include/b.json')).toBe(true);
    files.delete('include/b.json');
    ingest.remove('include/b.json');
    await vi.advanceTimersByTimeAsync(20);
    expect(fake.manifest.has('include/b.json')).toBe(false);
    expect(fake.submits.flat().some((c) => c.path === 'include/never-seen.json')).toBe(false);
  });

  it('keeps a queued deletion when the same path is removed twice (a file event after its directory, or a reconcile walk)', async () => {
    start();
    write('include/c.json', '{}');
    await vi.advanceTimersByTimeAsync(20);
    expect(fake.manifest.has('include/c.json')).toBe(true);
    files.delete('include/c.json');
    ingest.remove('include/c.json');
    ingest.remove('include/c.json');
    await vi.advanceTimersByTimeAsync(20);
    expect(fake.manifest.has('include/c.json')).toBe(false);
  });

  it('refuses a p2 file that holds another package than its path names', async () => {
    start();
    write('p2/acme/foo.json', '{"packages":{"evil/other":[]},"minified":"composer/2.0"}');
    write('p2/acme/bar~dev.json', '{"packages":{"acme/bar":[]},"minified":"composer/2.0"}');
    await vi.advanceTimersByTimeAsync(20);
    expect(published('p2/acme/foo.json')).toHaveLength(0);
    expect(published('p2/acme/bar~dev.json')).toHaveLength(1);
    expect(logged.some((l) => l.msg === 'source file refused' && l.path === 'p2/acme/foo.json')).toBe(true);
  });

  it('retries a change whose publish failed, with backoff, until it goes through', async () => {
    start();
    const submit = fake.publisher.submit.bind(fake.publisher);
    let failuresLeft = 2;
    fake.publisher.submit = async (changes, origin) => {
      if (failuresLeft-- > 0) throw new Error('s3 unreachable');
      return submit(changes, origin);
    };
    write('p2/acme/foo.json', '{"packages":{"acme/foo":[]}}');
    await vi.advanceTimersByTimeAsync(20);
    expect(fake.manifest.has('p2/acme/foo.json')).toBe(false);
    expect(logged.filter((l) => l.msg === 'source changes not published').map((l) => l.retryInMs)).toEqual([500]);
    await vi.advanceTimersByTimeAsync(500);
    expect(logged.filter((l) => l.msg === 'source changes not published').map((l) => l.retryInMs)).toEqual([500, 1_000]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fake.manifest.has('p2/acme/foo.json')).toBe(true);
  });

  it('drops a pending retry when the file is deleted meanwhile', async () => {
    start();
    const submit = fake.publisher.submit.bind(fake.publisher);
    let failuresLeft = 1;
    fake.publisher.submit = async (changes, origin) => {
      if (failuresLeft-- > 0) throw new Error('disk full');
      return submit(changes, origin);
    };
    write('include/gone.json', '{}');
    await vi.advanceTimersByTimeAsync(20);
    files.delete('include/gone.json');
    ingest.remove('include/gone.json');
    await vi.advanceTimersByTimeAsync(2_000);
    expect(fake.manifest.has('include/gone.json')).toBe(false);
    expect(fake.submits).toHaveLength(0);
  });

  it('skips a change whose bytes are already published', async () => {
    start();
    write('include/b.json', '{}');
    await vi.advanceTimersByTimeAsync(20);
    write('include/b.json', '{}');
    await vi.advanceTimersByTimeAsync(20);
    expect(fake.submits).toHaveLength(1);
  });
});
