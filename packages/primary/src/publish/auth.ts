/**
 * The primary's current set of publish tokens, kept in step with the tokens file
 * without a restart (auth/followed-file.ts: watch + poll; a reload that fails
 * keeps the last good set and logs `tokens file invalid`; only the first load
 * is fatal).
 */
import { metasyncError } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import { followFile } from '../auth/followed-file.js';
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

/** Loads the tokens file once (fatal when it is unreadable or malformed), then follows it (auth/followed-file.ts). */
export async function openPublishAuth(options: PublishAuthOptions): Promise<PublishAuth> {
  const { log, tokensFile } = options;
  if (tokensFile === undefined) return createStaticPublishAuth(options.staticTokens);
  const staticEntries = staticTokenEntries(options.staticTokens);
  let fileEntries: TokenEntry[] = [];
  let matcher = createTokenMatcher(staticEntries);
  let followed;
  try {
    followed = await followFile({
      path: tokensFile,
      label: 'tokens file',
      parse: parseTokensFile,
      apply(entries) {
        fileEntries = entries;
        matcher = createTokenMatcher([...staticEntries, ...entries]);
      },
      describe: (entries) => ({ tokens: entries.length, revoked: entries.filter((e) => e.revoked).length }),
      ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
      ...(options.watch === undefined ? {} : { watch: options.watch }),
      log,
    });
  } catch (err) {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `--tokens-file ${tokensFile}: ${(err as Error).message}`, { path: tokensFile }, err);
  }
  const file = followed;
  return {
    match: (presented) => matcher(presented),
    // The file may hold no usable token now and one a minute later: with a file, the API stays on.
    enabled: () => true,
    reload: file.reload,
    status: () => ({ activeTokens: staticEntries.length + fileEntries.filter((e) => !e.revoked).length, ...file.status() }),
    close: file.close,
  };
}
