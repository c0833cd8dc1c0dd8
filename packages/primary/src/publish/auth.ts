/**
 * The primary's current set of publish tokens, kept in step with the tokens file
 * without a restart:
 *
 *   fs.watch(dir of file) --event--> reload (read, parse, swap the matcher)
 *   stat every pollMs ----changed--> reload        (covers missed events, NFS, editors)
 *
 * A reload that fails (malformed JSON, a bad entry, the file missing) keeps the
 * last good set and logs `tokens file invalid` with the reason: a typo must not
 * lock every publisher out, nor let anyone in. Only the first load is fatal.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { hasErrno, metasyncError } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import { createTokenMatcher, parseTokensFile, staticTokenEntries, type TokenEntry, type TokenMatch } from './tokens.js';

export interface PublishAuth {
  /** Resolves a presented bearer secret against the current set. */
  match(presented: string): TokenMatch;
  /** False when no token of any kind is configured (the publish API is then off). */
  enabled(): boolean;
  /** Re-reads the tokens file now (also what the watcher and the poll call). */
  reload(): Promise<void>;
  status(): PublishAuthStatus;
  close(): void;
}

export interface PublishAuthStatus {
  /** Tokens from the file that are not revoked, plus the static ones. */
  activeTokens: number;
  /** Successful loads of the tokens file so far. */
  loads: number;
  /** Why the last reload was refused; undefined after a good one. */
  lastError: string | undefined;
}

export interface PublishAuthOptions {
  /** Secrets given in clear (METASYNC_PUBLISH_TOKEN): all-vendor admin tokens. */
  staticTokens: readonly string[];
  tokensFile?: string;
  /** How often the file is re-stat'ed besides the watch (0: watch only). */
  pollMs?: number;
  /** Watch the file's directory (default true; tests turn it off to exercise the poll alone). */
  watch?: boolean;
  log: Logger;
}

/** A fixed set of clear tokens, no file (tests and the simple case). */
export function createStaticPublishAuth(tokens: readonly string[]): PublishAuth {
  const entries = staticTokenEntries(tokens);
  const matcher = createTokenMatcher(entries);
  return {
    match: matcher,
    enabled: () => entries.length > 0,
    reload: () => Promise.resolve(),
    status: () => ({ activeTokens: entries.length, loads: 0, lastError: undefined }),
    close: () => undefined,
  };
}

/** Loads the tokens file once (fatal when it is unreadable or malformed), then follows it. */
export async function openPublishAuth(options: PublishAuthOptions): Promise<PublishAuth> {
  const { log, tokensFile } = options;
  if (tokensFile === undefined) return createStaticPublishAuth(options.staticTokens);
  const staticEntries = staticTokenEntries(options.staticTokens);
  let fileEntries: TokenEntry[] = [];
  let matcher = createTokenMatcher(staticEntries);
  let lastText: string | undefined;
  let lastSignature = '';
  let loads = 0;
  let lastError: string | undefined;
  let closed = false;

  async function readSignature(): Promise<string> {
    const info = await stat(tokensFile!);
    return `${info.ino}:${info.size}:${info.mtimeMs}`;
  }

  async function load(): Promise<void> {
    const signature = await readSignature();
    const text = await readFile(tokensFile!, 'utf8');
    lastSignature = signature;
    if (text === lastText) return;
    const entries = parseTokensFile(text, tokensFile!);
    fileEntries = entries;
    matcher = createTokenMatcher([...staticEntries, ...entries]);
    lastText = text;
    loads++;
    log.info({ path: tokensFile, tokens: entries.length, revoked: entries.filter((e) => e.revoked).length }, 'tokens file loaded');
  }

  try {
    await load();
  } catch (err) {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `--tokens-file ${tokensFile}: ${(err as Error).message}`, { path: tokensFile }, err);
  }

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
          const message = hasErrno(err, 'ENOENT') ? `tokens file ${tokensFile} does not exist` : (err as Error).message;
          if (message !== lastError) log.error({ path: tokensFile, err }, 'tokens file invalid, keeping the last good set');
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
      // The directory, not the file: an editor's or `token create`'s rename replaces the file's inode.
      watcher = watch(dirname(tokensFile), (_event, name) => {
        if (name === null || name === basename(tokensFile)) void reload();
      });
      watcher.on('error', (err) => log.warn({ err, path: tokensFile }, 'tokens file watch failed, polling only'));
    } catch (err) {
      log.warn({ err, path: tokensFile }, 'tokens file watch failed, polling only');
    }
  }
  const pollMs = options.pollMs ?? 1000;
  const timer =
    pollMs > 0
      ? setInterval(() => {
          pollOnce().catch((err: unknown) => log.error({ err, path: tokensFile }, 'tokens file poll failed'));
        }, pollMs)
      : undefined;
  timer?.unref();

  return {
    match: (presented) => matcher(presented),
    // The file may hold no usable token now and one a minute later: with a file, the API stays on.
    enabled: () => true,
    reload,
    status: () => ({ activeTokens: staticEntries.length + fileEntries.filter((e) => !e.revoked).length, loads, lastError }),
    close() {
      closed = true;
      watcher?.close();
      if (timer !== undefined) clearInterval(timer);
    },
  };
}
