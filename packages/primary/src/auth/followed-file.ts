/**
 * A small JSON file the primary keeps in step with, without a restart (the
 * publish tokens file, the mirror credentials file):
 *
 *   fs.watch(dir of file) --event--> reload (read, parse, apply)
 *   stat every pollMs ----changed--> reload        (covers missed events, NFS, editors)
 *
 * A reload that fails (malformed JSON, a bad entry, the file missing when that
 * is not allowed) keeps the last good value and logs `<label> invalid, keeping
 * the last good set` with the reason: a typo must not lock every caller out,
 * nor let anyone in. Only the first load throws.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { hasErrno } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';

export interface FollowFileOptions<T> {
  path: string;
  /** How logs and errors name the file: `tokens file`, `mirror credentials file`. */
  label: string;
  /** Throws (with the path and every problem) when the text is not acceptable. */
  parse(text: string, path: string): T;
  /** Puts a good value in force. */
  apply(value: T): void;
  /** Fields for the `<label> loaded` log line. */
  describe?(value: T): Record<string, unknown>;
  /** What an absent file means (e.g. "nothing enrolled yet"); undefined: an absent file is an error. */
  whenMissing?: T;
  /** How often the file is re-stat'ed besides the watch (0: watch only). */
  pollMs?: number;
  /** Watch the file's directory (default true; tests turn it off to exercise the poll alone). */
  watch?: boolean;
  log: Logger;
}

export interface FollowedFile {
  /** Re-reads the file now (also what the watcher and the poll call); never rejects. */
  reload(): Promise<void>;
  /** Successful loads so far, and why the last reload was refused (undefined after a good one). */
  status(): { loads: number; lastError: string | undefined };
  close(): void;
}

const MISSING = '\0missing';

/** Loads the file once (throws when that fails), then follows it. */
export async function followFile<T>(options: FollowFileOptions<T>): Promise<FollowedFile> {
  const { path, label, log } = options;
  let lastText: string | undefined;
  let lastSignature = '';
  let loads = 0;
  let lastError: string | undefined;
  let closed = false;

  async function readSignature(): Promise<string> {
    const info = await stat(path);
    return `${info.ino}:${info.size}:${info.mtimeMs}`;
  }

  async function load(): Promise<void> {
    let signature = '';
    let text: string;
    try {
      signature = await readSignature();
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (options.whenMissing === undefined || !hasErrno(err, 'ENOENT')) throw err;
      text = MISSING;
    }
    lastSignature = signature;
    if (text === lastText) return;
    const value = text === MISSING ? (options.whenMissing as T) : options.parse(text, path);
    options.apply(value);
    lastText = text;
    loads++;
    log.info({ path, ...options.describe?.(value) }, `${label} loaded`);
  }

  await load();

  // One reload at a time; a request for another while one runs is folded into a single follow-up.
  let running: Promise<void> | undefined;
  let again = false;
  function reload(): Promise<void> {
    if (closed) return Promise.resolve();
    if (running !== undefined) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await load();
          lastError = undefined;
        } catch (err) {
          const message = hasErrno(err, 'ENOENT') ? `${label} ${path} does not exist` : (err as Error).message;
          if (message !== lastError) log.error({ path, err }, `${label} invalid, keeping the last good set`);
          lastError = message;
          // A malformed file is not re-read until it changes again; a missing one is polled until it is back.
          if (hasErrno(err, 'ENOENT')) lastSignature = '';
        }
      } while (again && !closed);
    })().finally(() => {
      running = undefined;
    });
    return running;
  }

  async function pollOnce(): Promise<void> {
    let signature = '';
    try {
      signature = await readSignature();
    } catch (err) {
      if (!hasErrno(err, 'ENOENT')) throw err;
    }
    if (signature !== lastSignature) await reload();
  }

  let watcher: FSWatcher | undefined;
  if (options.watch !== false) {
    try {
      // The directory, not the file: an editor's or the CLI's rename replaces the file's inode.
      watcher = watch(dirname(path), (_event, name) => {
        if (name === null || name === basename(path)) void reload();
      });
      watcher.on('error', (err) => log.warn({ err, path }, `${label} watch failed, polling only`));
    } catch (err) {
      log.warn({ err, path }, `${label} watch failed, polling only`);
    }
  }
  const pollMs = options.pollMs ?? 1000;
  const timer =
    pollMs > 0
      ? setInterval(() => {
          pollOnce().catch((err: unknown) => log.error({ err, path }, `${label} poll failed`));
        }, pollMs)
      : undefined;
  timer?.unref();

  return {
    reload,
    status: () => ({ loads, lastError }),
    close() {
      closed = true;
      watcher?.close();
      if (timer !== undefined) clearInterval(timer);
    },
  };
}
