/**
 * The watched source tree (`--source`): any generator writes a Composer
 * repository tree there; every create, change, delete and rename becomes a
 * path change published with origin 'watch'. See path-settler.ts for when a
 * file counts as complete, paths.ts for what is ignored or refused.
 *
 * Start-up: chokidar is watching before the tree is walked, so nothing written
 * during the walk is missed; the walk re-reads every file (same pipeline, so a
 * newer event always wins) and publishes what differs from the manifest, then
 * deletes manifest paths of origin 'watch' that are no longer in the tree.
 * startSourceWatcher resolves only after that reconcile is committed.
 */
import { once } from 'node:events';
import { readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { hasErrno, metasyncError } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import { watch } from 'chokidar';
import type { Publisher } from '../publish/publisher.js';
import { createSourceIngest, type SourceIngest } from './ingest.js';
import { createBurstReconcile } from './burst-reconcile.js';
import { isIgnoredName, isIgnoredRelative, readSourceFile, relativeSourcePath, statSourceFile } from './paths.js';

export interface SourceWatcherOptions {
  sourceDir: string;
  publisher: Publisher;
  log: Logger;
  /** Non-JSON files publish after this long without an event. */
  stabilityWindowMs?: number;
  /** JSON still unparseable this long after its last event is refused. */
  jsonSettleMs?: number;
  maxFileBytes?: number;
}

export interface SourceWatcher {
  close(): Promise<void>;
}

export const DEFAULT_MAX_SOURCE_FILE_BYTES = 64 * 1024 * 1024;

export async function startSourceWatcher(options: SourceWatcherOptions): Promise<SourceWatcher> {
  const { publisher, log } = options;
  const startedMs = Date.now();
  const rootReal = await realSourceDir(options.sourceDir);
  const readOptions = { rootReal, maxFileBytes: options.maxFileBytes ?? DEFAULT_MAX_SOURCE_FILE_BYTES };
  const ingest = createSourceIngest({
    publisher,
    log,
    read: (path) => readSourceFile(readOptions, path),
    stat: (path) => statSourceFile(readOptions, path),
    ...(options.stabilityWindowMs === undefined ? {} : { stabilityWindowMs: options.stabilityWindowMs }),
    ...(options.jsonSettleMs === undefined ? {} : { jsonSettleMs: options.jsonSettleMs }),
  });

  const toPath = (absolute: string): string | undefined => {
    const rel = relativeSourcePath(rootReal, absolute);
    return rel === undefined || isIgnoredRelative(rel) ? undefined : rel;
  };
  const watcher = watch(rootReal, {
    ignoreInitial: true,
    followSymlinks: false,
    ignored: (absolute: string) => {
      const rel = relativeSourcePath(rootReal, absolute);
      return rel !== undefined && isIgnoredRelative(rel);
    },
  });
  const bursts = createBurstReconcile({
    walk: () => walkTreeMtimes(rootReal),
    tracks: (path) => ingest.tracks(path),
    publishedPaths: () => watchedPaths(publisher),
    touch: (path) => ingest.touch(path, { recheck: false }),
    remove: (path) => ingest.remove(path),
    onReconciled: (stats) => log.info(stats, 'source tree reconciled after a burst'),
    onError: (err) => log.error({ err, sourceDir: rootReal }, 'source tree reconcile after a burst failed'),
  });
  watcher.on('all', () => bursts.event());
  watcher.on('add', (absolute: string) => withPath(toPath(absolute), (path) => ingest.touch(path)));
  watcher.on('change', (absolute: string) => withPath(toPath(absolute), (path) => ingest.touch(path)));
  watcher.on('unlink', (absolute: string) => withPath(toPath(absolute), (path) => ingest.remove(path)));
  watcher.on('unlinkDir', (absolute: string) => withPath(toPath(absolute), (prefix) => removeTree(publisher, ingest, prefix)));
  watcher.on('error', (err: unknown) => log.error({ err, sourceDir: rootReal }, 'source watcher failed'));
  await once(watcher, 'ready');
  const watchingMs = Date.now() - startedMs;

  try {
    ingest.hold();
    const files = await walkTree(rootReal);
    for (const path of files) ingest.touch(path, { recheck: false });
    let deleted = 0;
    for (const path of watchedPaths(publisher)) {
      if (!files.has(path)) {
        ingest.remove(path);
        deleted++;
      }
    }
    await ingest.settled();
    ingest.release();
    await ingest.idle();
    log.info(
      { sourceDir: rootReal, files: files.size, deleted, seq: publisher.headSeq(), watchingMs, durationMs: Date.now() - startedMs },
      'source tree reconciled',
    );
  } catch (err) {
    bursts.close();
    await watcher.close();
    await ingest.close();
    throw err;
  }

  return {
    async close() {
      bursts.close();
      await watcher.close();
      await ingest.close();
    },
  };
}

function withPath(path: string | undefined, action: (path: string) => void): void {
  if (path !== undefined) action(path);
}

/** A removed directory: every published path below it goes (chokidar may not list each file). */
function removeTree(publisher: Publisher, ingest: SourceIngest, prefix: string): void {
  const under = `${prefix}/`;
  const paths: string[] = [];
  for (const [path, entry] of publisher.entries()) if (entry.origin === 'watch' && path.startsWith(under)) paths.push(path);
  for (const path of paths) ingest.remove(path);
}

async function realSourceDir(sourceDir: string): Promise<string> {
  try {
    const real = await realpath(sourceDir);
    if (!(await stat(real)).isDirectory())
      throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `--source ${sourceDir} is not a directory`, { sourceDir });
    return real;
  } catch (err) {
    if (hasErrno(err, 'ENOENT'))
      throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `--source ${sourceDir} does not exist`, { sourceDir }, err);
    throw err;
  }
}

/** The published paths that came from this watcher. */
function* watchedPaths(publisher: Publisher): Iterable<string> {
  for (const [path, entry] of publisher.entries()) if (entry.origin === 'watch') yield path;
}

/** walkTree, with each file's mtime (a file removed meanwhile is left out). */
async function walkTreeMtimes(rootReal: string): Promise<Map<string, number>> {
  const paths = [...(await walkTree(rootReal))];
  const mtimes = new Map<string, number>();
  const STAT_BATCH = 64;
  for (let i = 0; i < paths.length; i += STAT_BATCH) {
    const batch = paths.slice(i, i + STAT_BATCH);
    const stats = await Promise.all(
      batch.map((path) =>
        stat(join(rootReal, path)).catch((err: unknown) => {
          if (hasErrno(err, 'ENOENT')) return undefined;
          throw err;
        }),
      ),
    );
    stats.forEach((st, index) => {
      if (st !== undefined) mtimes.set(batch[index]!, st.mtimeMs);
    });
  }
  return mtimes;
}

/** Every non-ignored file (and symlink) under the root, as repository-style relative paths. */
async function walkTree(rootReal: string): Promise<Set<string>> {
  const files = new Set<string>();
  const pending: Array<{ dir: string; rel: string }> = [{ dir: rootReal, rel: '' }];
  while (pending.length > 0) {
    const { dir, rel } = pending.pop()!;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (hasErrno(err, 'ENOENT')) continue; // removed while walking; its unlink events handle it
      throw err;
    }
    for (const entry of entries) {
      if (isIgnoredName(entry.name)) continue;
      const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) pending.push({ dir: join(dir, entry.name), rel: childRel });
      else if (entry.isFile() || entry.isSymbolicLink()) files.add(childRel);
    }
  }
  return files;
}
