import { watch as fsWatch } from 'node:fs';
import { mkdir, rename, rm, symlink, unlink, writeFile, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from '@metasync/shared';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../../../test/helpers/wait-for.js';
import type { WatchDir } from './dir-watches.js';
import { createSourceWatchStatus } from './watch-status.js';
import { useWatcherFixture } from './watcher-fixture.js';
import { startSourceWatcher } from './watcher.js';

const t = useWatcherFixture();
const sha = (text: string) => sha256Hex(Buffer.from(text));
const generationsTouching = (path: string) => t.commits.filter((c) => c.generation.entries.some((e) => e.path === path));

/** fs.watch as the kernel gives it, but ENOSPC once `limit` watches were added. */
function watchUpTo(limit: number): WatchDir {
  let added = 0;
  return (absolute, listener) => {
    if (++added > limit) {
      throw Object.assign(new Error(`ENOSPC: System limit for number of file watchers reached, watch '${absolute}'`), { code: 'ENOSPC' });
    }
    return fsWatch(absolute, { persistent: false }, listener);
  };
}

describe('watched source tree', () => {
  it('reconciles on start: publishes the tree, then changes and deletions made while down', async () => {
    await writeFile(join(t.source, 'packages.json'), '{"packages":[]}');
    await writeFile(join(t.source, 'include/acme/foo.json'), '{"v":1}');
    await writeFile(join(t.source, 'include/acme/bar.json'), '{"v":1}');
    await t.open();
    await t.startWatching();
    expect(t.entryOf('include/acme/foo.json')).toMatchObject({ sha256: sha('{"v":1}'), origin: 'watch' });
    expect(t.entryOf('packages.json')).toBeDefined();
    await t.stop();

    await writeFile(join(t.source, 'include/acme/foo.json'), '{"v":2}');
    await unlink(join(t.source, 'include/acme/bar.json'));
    await t.open();
    const seqBefore = t.core!.publisher.headSeq();
    await t.startWatching();
    expect(t.entryOf('include/acme/foo.json')?.sha256).toBe(sha('{"v":2}'));
    expect(t.entryOf('include/acme/bar.json')).toBeUndefined();
    expect(t.core!.publisher.headSeq()).toBe(seqBefore + 1);
    await t.stop();

    await t.open();
    const seqUnchanged = t.core!.publisher.headSeq();
    await t.startWatching();
    expect(t.core!.publisher.headSeq()).toBe(seqUnchanged);
  });

  it('closes during its start-up reconcile: close resolves, the reconcile settles, nothing half of it is published', async () => {
    for (let dir = 0; dir < 40; dir++) {
      await mkdir(join(t.source, 'p2', `v${dir}`), { recursive: true });
      await Promise.all(Array.from({ length: 50 }, (_, i) => writeFile(join(t.source, 'p2', `v${dir}`, `p${i}.json`), `{"v":${i}}`)));
    }
    await t.open();
    t.watcher = await startSourceWatcher({ sourceDir: t.source, publisher: t.core!.publisher, log: t.log });
    const outcome = t.watcher!.reconciled.then(
      () => 'resolved',
      () => 'rejected',
    );
    await t.watcher!.close();
    t.watcher = undefined;
    expect(await outcome).toBe('resolved');
    // Closed before any file was read: nothing of the reconcile is committed (a batch already read would be).
    expect(t.core!.publisher.headSeq()).toBe(0);
    expect(t.logs.some((line) => line.msg === 'source tree reconciled')).toBe(false);
  });

  it('publishes creates, changes, renames and deletes as they happen', async () => {
    await t.open();
    await t.startWatching();
    await writeFile(join(t.source, 'include/acme/foo.json'), '{"v":1}');
    await waitFor(() => t.entryOf('include/acme/foo.json')?.sha256 === sha('{"v":1}'), { what: 'create published', timeoutMs: 5_000 });
    await writeFile(join(t.source, 'include/acme/foo.json'), '{"v":2}');
    await waitFor(() => t.entryOf('include/acme/foo.json')?.sha256 === sha('{"v":2}'), { what: 'change published', timeoutMs: 5_000 });
    await rename(join(t.source, 'include/acme/foo.json'), join(t.source, 'include/acme/moved.json'));
    await waitFor(() => t.entryOf('include/acme/foo.json') === undefined && t.entryOf('include/acme/moved.json') !== undefined, {
      what: 'rename published',
      timeoutMs: 5_000,
    });
    await unlink(join(t.source, 'include/acme/moved.json'));
    await waitFor(() => t.entryOf('include/acme/moved.json') === undefined, { what: 'delete published', timeoutMs: 5_000 });
    await mkdir(join(t.source, 'include/gone'));
    await writeFile(join(t.source, 'include/gone/a.json'), '{}');
    await waitFor(() => t.entryOf('include/gone/a.json') !== undefined, { what: 'file in new dir', timeoutMs: 5_000 });
    await rm(join(t.source, 'include/gone'), { recursive: true });
    await waitFor(() => t.entryOf('include/gone/a.json') === undefined, { what: 'directory removal published', timeoutMs: 5_000 });
  });

  it('ignores temp and editor files and publishes an atomic-rename write once', async () => {
    await t.open();
    await t.startWatching();
    for (const name of ['foo.json.tmp', '.#foo.json', 'foo.json~', '.foo.json.swp', 'foo.swp', '.hidden.json']) {
      await writeFile(join(t.source, 'include/acme', name), '{"partial":');
    }
    await mkdir(join(t.source, '.git'));
    await writeFile(join(t.source, '.git/config.json'), '{}');
    const content = JSON.stringify({ packages: { 'acme/foo': [] } });
    await writeFile(join(t.source, 'include/acme/.foo.json.tmp-1'), content);
    await rename(join(t.source, 'include/acme/.foo.json.tmp-1'), join(t.source, 'include/acme/foo.json'));
    await waitFor(() => t.entryOf('include/acme/foo.json')?.sha256 === sha(content), { what: 'atomic write published', timeoutMs: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 300)); // let any stray event for the ignored files arrive
    expect([...t.core!.publisher.entries()].map(([path]) => path)).toEqual(['include/acme/foo.json']);
    expect(generationsTouching('include/acme/foo.json')).toHaveLength(1);
  });

  it('publishes a file written in three chunks 50 ms apart once, complete', async () => {
    await t.open();
    await t.startWatching();
    const full = JSON.stringify({
      packages: { 'acme/foo': [{ name: 'acme/foo', version: '1.0.0', description: 'x'.repeat(3000) }] },
      minified: 'composer/2.0',
    });
    await mkdir(join(t.source, 'p2/acme'), { recursive: true });
    const path = join(t.source, 'p2/acme/foo.json');
    const third = Math.ceil(full.length / 3);
    await writeFile(path, full.slice(0, third));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await appendFile(path, full.slice(third, 2 * third));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await appendFile(path, full.slice(2 * third));
    await waitFor(() => t.entryOf('p2/acme/foo.json')?.sha256 === sha(full), { what: 'complete file published', timeoutMs: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(generationsTouching('p2/acme/foo.json')).toHaveLength(1);
  });

  it('refuses a symlink pointing outside the tree, logging METASYNC_ERR_SOURCE_REFUSED, and follows one inside', async () => {
    await writeFile(join(t.base, 'secret.json'), '{"secret":true}');
    await writeFile(join(t.source, 'include/acme/real.json'), '{"real":true}');
    await symlink(join(t.base, 'secret.json'), join(t.source, 'include/acme/outside.json'));
    await symlink(join(t.source, 'include/acme/real.json'), join(t.source, 'include/acme/inside.json'));
    await t.open();
    await t.startWatching();
    expect(t.entryOf('include/acme/outside.json')).toBeUndefined();
    expect(t.entryOf('include/acme/inside.json')?.sha256).toBe(sha('{"real":true}'));
    const refusal = t.logs.find((l) => l.msg === 'source file refused' && l.path === 'include/acme/outside.json');
    expect((refusal?.err as { code?: string } | undefined)?.code).toBe('METASYNC_ERR_SOURCE_REFUSED');
    await symlink('/etc/hostname', join(t.source, 'include/acme/live.json'));
    await waitFor(() => t.logs.some((l) => l.msg === 'source file refused' && l.path === 'include/acme/live.json'), {
      what: 'live symlink refused',
      timeoutMs: 5_000,
    });
    expect(t.entryOf('include/acme/live.json')).toBeUndefined();
  });

  it('publishes files created in a directory created a moment ago, and follows directories renamed in, within and out', async () => {
    await t.open();
    const status = createSourceWatchStatus();
    await t.startWatching({ status });
    expect(status.snapshot().watches).toBe(3); // the root, include, include/acme: no watch per file
    await mkdir(join(t.source, 'p/a/b/c'), { recursive: true });
    await writeFile(join(t.source, 'p/a/b/c/x.json'), '{"x":1}');
    await writeFile(join(t.source, 'p/a/y.json'), '{"y":1}');
    await waitFor(() => t.entryOf('p/a/b/c/x.json') !== undefined && t.entryOf('p/a/y.json') !== undefined, {
      what: 'files in new nested directories',
      timeoutMs: 5_000,
    });
    await mkdir(join(t.base, 'outside/v/w'), { recursive: true });
    await writeFile(join(t.base, 'outside/v/w/z.json'), '{"z":1}');
    await rename(join(t.base, 'outside/v'), join(t.source, 'include/v'));
    await waitFor(() => t.entryOf('include/v/w/z.json') !== undefined, { what: 'directory renamed in', timeoutMs: 5_000 });
    await rename(join(t.source, 'include/v'), join(t.source, 'include/moved'));
    await waitFor(() => t.entryOf('include/v/w/z.json') === undefined && t.entryOf('include/moved/w/z.json') !== undefined, {
      what: 'directory renamed within',
      timeoutMs: 5_000,
    });
    await rename(join(t.source, 'p'), join(t.base, 'elsewhere'));
    await waitFor(() => t.entryOf('p/a/b/c/x.json') === undefined && t.entryOf('p/a/y.json') === undefined, {
      what: 'directory renamed out',
      timeoutMs: 5_000,
    });
    await waitFor(() => status.snapshot().watches === 5, { what: 'watches of the moved-out subtree closed', timeoutMs: 5_000 });
    await writeFile(join(t.base, 'elsewhere/a/late.json'), '{}'); // outside the tree now: never published
    await writeFile(join(t.source, 'include/moved/w/after.json'), '{}');
    await waitFor(() => t.entryOf('include/moved/w/after.json') !== undefined, {
      what: 'write in the renamed directory',
      timeoutMs: 5_000,
    });
    expect([...t.core!.publisher.entries()].map(([path]) => path).sort()).toEqual(['include/moved/w/after.json', 'include/moved/w/z.json']);
  });

  it('publishes into a directory deleted, made again and renamed, and into one moved out and back in', async () => {
    // inotifywait's names for such directories go stale (bulk-dir-watches.ts): their new paths need watches of their own.
    await mkdir(join(t.source, 'include/a/sub'), { recursive: true });
    await mkdir(join(t.source, 'include/c/sub'), { recursive: true });
    await t.open();
    await t.startWatching();
    await rm(join(t.source, 'include/a'), { recursive: true });
    await mkdir(join(t.source, 'include/a'));
    await rename(join(t.source, 'include/a'), join(t.source, 'include/b'));
    await writeFile(join(t.source, 'include/b/new.json'), '{"n":1}');
    await waitFor(() => t.entryOf('include/b/new.json') !== undefined, {
      what: 'a file in the remade, renamed directory',
      timeoutMs: 5_000,
    });
    await rename(join(t.source, 'include/c'), join(t.base, 'out-c'));
    await writeFile(join(t.source, 'include/between.json'), '{}');
    await rename(join(t.base, 'out-c'), join(t.source, 'include/d'));
    await writeFile(join(t.source, 'include/d/sub/new.json'), '{"n":2}');
    await waitFor(() => t.entryOf('include/d/sub/new.json') !== undefined, {
      what: 'a file in the directory moved back in',
      timeoutMs: 5_000,
    });
  });

  it('publishes into a directory deleted and made again under its name, each time (ext4 gives it the old inode number)', async () => {
    await t.open();
    await t.startWatching();
    for (let round = 0; round < 3; round++) {
      await rm(join(t.source, 'include/acme'), { recursive: true, force: true });
      await mkdir(join(t.source, 'include/acme'));
      await writeFile(join(t.source, `include/acme/r${round}.json`), `{"r":${round}}`);
      await waitFor(() => t.entryOf(`include/acme/r${round}.json`) !== undefined, {
        what: `a file in the remade directory, round ${round}`,
        timeoutMs: 5_000,
      });
      await new Promise((resolve) => setTimeout(resolve, 200)); // its events handled before the next delete
      await writeFile(join(t.source, `include/acme/late${round}.json`), `{"late":${round}}`);
      await waitFor(() => t.entryOf(`include/acme/late${round}.json`) !== undefined, {
        what: `a later file there, round ${round}`,
        timeoutMs: 5_000,
      });
    }
  });

  it('falls back to scanning when the kernel refuses a watch (ENOSPC): warns, keeps running, publishes and deletes through the scan', async () => {
    await mkdir(join(t.source, 'p2/acme'), { recursive: true });
    await writeFile(join(t.source, 'p2/acme/old.json'), '{"packages":{"acme/old":[]}}');
    await t.open();
    const status = createSourceWatchStatus();
    await t.startWatching({ status, watchDir: watchUpTo(2), fallbackScanMs: 200 });
    expect(t.entryOf('p2/acme/old.json')).toBeDefined(); // the start-up walk does not depend on watches
    const warning = t.logs.find((l) => l.msg === 'source watch limit reached');
    expect(warning).toMatchObject({ level: 40, reason: 'ENOSPC', watches: 2 });
    expect((warning?.err as { code?: string }).code).toBe('METASYNC_ERR_SOURCE_WATCH_LIMIT');
    expect(status.snapshot()).toMatchObject({ watches: 2, degraded: { reason: 'ENOSPC' }, scanIntervalMs: 200 });
    // Directories are walked several at a time: which one the limit hits first depends on the order they are read in.
    expect(['include', 'include/acme', 'p2', 'p2/acme']).toContain(status.snapshot().degraded?.directory);
    await writeFile(join(t.source, 'p2/acme/new.json'), '{"packages":{"acme/new":[]}}');
    await writeFile(join(t.source, 'include/acme/new.json'), '{}');
    await unlink(join(t.source, 'p2/acme/old.json'));
    await waitFor(
      () =>
        t.entryOf('p2/acme/new.json') !== undefined &&
        t.entryOf('include/acme/new.json') !== undefined &&
        t.entryOf('p2/acme/old.json') === undefined,
      { what: 'changes in unwatched directories published by the fallback scan', timeoutMs: 5_000 },
    );
    expect(t.logs.some((l) => l.msg === 'source tree rescanned' && l.reason === 'fallback' && typeof l.durationMs === 'number')).toBe(true);
  });

  it('the periodic rescan publishes a change whose event was lost', async () => {
    await t.open();
    // Watches that never report: every event is lost, as when inotify's queue overflows.
    const deaf: WatchDir = (absolute) => fsWatch(absolute, { persistent: false }, () => undefined);
    await t.startWatching({ watchDir: deaf, rescanMs: 200 });
    await writeFile(join(t.source, 'include/acme/lost.json'), '{"lost":true}');
    await waitFor(() => t.entryOf('include/acme/lost.json') !== undefined, { what: 'lost change found by the rescan', timeoutMs: 5_000 });
    const scan = t.logs.find((l) => l.msg === 'source tree rescanned' && l.reason === 'periodic' && l.touched === 1);
    expect(scan).toMatchObject({ files: 1, removed: 0 });
  });
});
