import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { isMetasyncError, sha256Hex } from '@metasync/shared';
import { createLogger, type Logger } from '@metasync/shared/daemon';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/helpers/wait-for.js';
import { buildApp, type PrimaryApp } from '../src/app.js';
import { openPrimaryCore, type PrimaryCore } from '../src/data-dir.js';
import { startSourceWatcher, type SourceWatcher } from '../src/watch/watcher.js';

/** Daemon routes a source tree could shadow (issue 11), one per reserved top segment the report named. */
const RESERVED_SOURCE_FILES = ['health/fresh', 'metrics', 'healthz', 'status', 'sync/x', 'api/x'] as const;
const ORDINARY = 'p2/acme/foo.json';
const P2 = '{"packages":{"acme/foo":[{"name":"acme/foo","version":"1.0.0"}]},"minified":"composer/2.0"}';
const TOKEN = 'reserved-test-token';

let base: string;
let logs: Array<Record<string, unknown>>;
let log: Logger;
let core: PrimaryCore | undefined;
let built: PrimaryApp | undefined;
let watcher: SourceWatcher | undefined;

async function openCore(): Promise<PrimaryCore> {
  core = await openPrimaryCore({
    dataDir: join(base, 'data'),
    signingKeyFile: undefined,
    keepGenerations: 1000,
    snapshotEveryGenerations: 1000,
    snapshotIntervalMs: 3_600_000,
    log,
  });
  return core;
}

async function openApp(): Promise<PrimaryApp> {
  built = await buildApp({ core: core!, logger: log, publishTokens: [TOKEN], maxBodyBytes: 1024 * 1024, heartbeatMs: 15_000 });
  return built;
}

async function closeAll(): Promise<void> {
  await watcher?.close();
  watcher = undefined;
  await built?.app.close();
  built = undefined;
  await core?.close();
  core = undefined;
}

async function writeSource(path: string, text: string): Promise<void> {
  const absolute = join(base, 'source', ...path.split('/'));
  await mkdir(dirname(absolute), { recursive: true });
  await writeFile(absolute, text);
}

async function refusedCount(source: string): Promise<number> {
  const response = await built!.app.inject({ url: '/metrics' });
  const line = response.body.split('\n').find((l) => l.startsWith(`metasync_primary_reserved_paths_refused_total{source="${source}"}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

const refusalLogged = (path: string) =>
  logs.some((entry) => entry.path === path && (entry.err as { code?: string } | undefined)?.code === 'METASYNC_ERR_PATH_RESERVED');

/** Writes an old-style data dir: a generation holding `paths`, appended below the publisher's gate, as an older primary could have. */
async function appendBelowTheGate(paths: readonly string[]): Promise<void> {
  const publisher = core!.publisher;
  const entries = [];
  for (const path of paths) {
    const raw = Buffer.from(`content of ${path}`);
    const stored = await publisher.store.put({ raw, sha256: sha256Hex(raw) });
    entries.push({ path, sha256: stored.sha256, size: stored.size, mtime: 1_700_000_000_000, origin: 'watch' as const });
  }
  await publisher.store.sync();
  await publisher.journal.append({ seq: publisher.headSeq() + 1, time: publisher.headTime() + 1, entries });
}

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'metasync-reserved-'));
  await mkdir(join(base, 'source'), { recursive: true });
  logs = [];
  log = createLogger(
    { name: 'test', level: 'info' },
    { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
  );
});

afterEach(async () => {
  await closeAll();
  await rm(base, { recursive: true, force: true });
});

describe('reserved paths at ingest (watched source)', () => {
  it('refuses source files named like daemon routes, logged and counted, and publishes the ordinary file beside them', async () => {
    for (const path of RESERVED_SOURCE_FILES) await writeSource(path, `shadow ${path}\n`);
    await writeSource(ORDINARY, P2);
    await openCore();
    await openApp();
    watcher = await startSourceWatcher({ sourceDir: join(base, 'source'), publisher: core!.publisher, log });
    await watcher.reconciled;

    expect(core!.publisher.getEntry(ORDINARY)?.sha256).toBe(sha256Hex(P2));
    for (const path of RESERVED_SOURCE_FILES) {
      expect(core!.publisher.getEntry(path), path).toBeUndefined();
      expect(refusalLogged(path), `refusal of ${path} logged with its code`).toBe(true);
    }
    expect(await refusedCount('watch')).toBeGreaterThanOrEqual(RESERVED_SOURCE_FILES.length);

    // A live write is refused the same way, and does not hold back the ordinary file written after it.
    await writeSource('admin/x', 'shadow admin\n');
    await writeSource('p2/acme/bar.json', P2.replaceAll('acme/foo', 'acme/bar'));
    await waitFor(() => core!.publisher.getEntry('p2/acme/bar.json') !== undefined && refusalLogged('admin/x'), {
      what: 'live refusal and publish',
      timeoutMs: 5_000,
    });
    expect(core!.publisher.getEntry('admin/x')).toBeUndefined();
  });
});

describe('reserved paths at publish', () => {
  it('refuses a submit that would create a daemon route path, whatever its origin; nothing is committed', async () => {
    await openCore();
    await openApp();
    const seq = core!.publisher.headSeq();
    for (const origin of ['api', 'watch'] as const) {
      for (const path of [...RESERVED_SOURCE_FILES, 'metadata/changes.json']) {
        const error = await core!.publisher
          .submit(
            [
              { path: ORDINARY, content: Buffer.from(P2) },
              { path, content: Buffer.from('x') },
            ],
            origin,
          )
          .then(
            () => undefined,
            (err: unknown) => err,
          );
        expect(isMetasyncError(error, 'METASYNC_ERR_PATH_RESERVED'), `${origin} ${path}`).toBe(true);
      }
    }
    expect(core!.publisher.headSeq()).toBe(seq);
    expect(core!.publisher.getEntry(ORDINARY)).toBeUndefined();
    expect(refusalLogged('health/fresh')).toBe(true);
    expect(await refusedCount('api')).toBeGreaterThanOrEqual(7);
  });

  it('the publish API can only name p2/ files: a package called health/fresh lands under p2/ and shadows no route', async () => {
    await openCore();
    await openApp();
    const response = await built!.app.inject({
      method: 'PUT',
      url: '/api/v1/packages/health/fresh',
      headers: { authorization: `Bearer ${TOKEN}` },
      payload: { versions: [{ version: '1.0.0', dist: { type: 'zip', url: 'https://example.org/h.zip', reference: 'r1' } }] },
    });
    expect(response.statusCode, response.body).toBeLessThan(300);
    const paths = [...core!.publisher.entries()].map(([path]) => path);
    expect(paths).toContain('p2/health/fresh.json');
    expect(paths.filter((path) => !path.startsWith('p2/') && path !== 'packages.json')).toEqual([]);
    expect((await built!.app.inject({ url: '/health/fresh' })).statusCode).toBe(404);
  });
});

describe('reserved paths in existing data', () => {
  it('never serves a reserved path from the manifest: the routes answer, whatever the request headers', async () => {
    await openCore();
    await openApp();
    // Below the gate: the manifest of a primary that ingested these before the gate existed.
    const raw = Buffer.from('{"shadow":true}');
    const stored = await core!.publisher.store.put({ raw, sha256: sha256Hex(raw) });
    for (const path of [...RESERVED_SOURCE_FILES, 'status/data.json', 'metadata/changes.json']) {
      core!.manifest.set(path, { sha256: stored.sha256, size: stored.size, mtime: 1_700_000_000_000, origin: 'watch' });
    }
    const headerSets = [
      {},
      { 'accept-encoding': 'br, gzip' },
      { 'if-none-match': `"${stored.sha256}"`, 'if-modified-since': 'Tue, 01 Jan 2030 00:00:00 GMT' },
      { host: 'mirror.example', 'x-forwarded-host': 'example.org', accept: 'application/json' },
    ];
    for (const headers of headerSets) {
      const metrics = await built!.app.inject({ url: '/metrics', headers });
      expect(metrics.statusCode).toBe(200);
      expect(metrics.body).toContain('metasync_head_seq');
      const status = await built!.app.inject({ url: '/status/data.json', headers });
      expect(status.body).not.toContain('shadow');
      const changes = await built!.app.inject({ url: '/metadata/changes.json', headers });
      expect(changes.body).not.toContain('shadow');
      for (const path of ['health/fresh', 'healthz', 'sync/x', 'api/x']) {
        const response = await built!.app.inject({ url: `/${path}`, headers });
        expect(response.body, `/${path} ${JSON.stringify(headers)}`).not.toContain('shadow');
        expect(response.statusCode, `/${path}`).not.toBe(200);
        expect(response.statusCode, `/${path}`).not.toBe(304);
      }
    }
  });

  it('deletes reserved paths an older version committed when the data dir opens, so mirrors drop them too', async () => {
    await openCore();
    await core!.publisher.submit([{ path: ORDINARY, content: Buffer.from(P2) }], 'watch');
    await appendBelowTheGate(['health/fresh', 'metrics']);
    await core!.close();
    core = undefined;

    await openCore();
    expect(core!.publisher.getEntry('health/fresh')).toBeUndefined();
    expect(core!.publisher.getEntry('metrics')).toBeUndefined();
    expect(core!.publisher.getEntry(ORDINARY)).toBeDefined();
    // The removal is an ordinary generation of deletions: a mirror that applied the old paths drops them.
    const [purge] = core!.publisher.journal.generationsAfter(core!.publisher.headSeq() - 1);
    expect(purge?.entries.map((entry) => ({ path: entry.path, deleted: 'deleted' in entry }))).toEqual([
      { path: 'health/fresh', deleted: true },
      { path: 'metrics', deleted: true },
    ]);
    expect(logs.some((entry) => entry.msg === 'reserved paths deleted from the repository')).toBe(true);
  });
});
