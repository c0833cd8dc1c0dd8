/**
 * The primary's enrolled mirrors at run time: checks presented credentials,
 * and issues or revokes them for the admin API. The file-backed store follows
 * `<data>/mirror-credentials.json` (auth/followed-file.ts), so an edit by
 * `metasync-primary mirror-credential` or by hand takes effect within a poll,
 * without a restart; its own issues and revokes write the file (temp + rename,
 * 0600) one at a time and reload it before answering.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hasErrno } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import { writeFileAtomic } from '@metasync/shared/fs';
import { followFile } from '../auth/followed-file.js';
import {
  createCredentialMatcher,
  issueCredential,
  MIRROR_CREDENTIALS_FILE,
  parseMirrorCredentials,
  revokeCredential,
  serializeMirrorCredentials,
  type MirrorCredentialCheck,
  type MirrorCredentialEntry,
} from './credentials.js';

export interface MirrorCredentials {
  check(mirrorId: string, presented: string): MirrorCredentialCheck;
  /** True while `mirrorId` has an unrevoked credential: only such mirrors are listed. */
  isEnrolled(mirrorId: string): boolean;
  /** A new secret for `mirrorId` (replacing any earlier one), in force when this resolves. */
  issue(mirrorId: string): Promise<{ secret: string; entry: MirrorCredentialEntry }>;
  /** Revokes `mirrorId`'s credential, in force when this resolves; idempotent. */
  revoke(mirrorId: string): Promise<'revoked' | 'already-revoked' | 'unknown'>;
  list(): readonly MirrorCredentialEntry[];
  /** Re-reads the file now (the watch and poll call it too); a no-op in memory. */
  reload(): Promise<void>;
  close(): void;
}

interface Holder {
  entries: readonly MirrorCredentialEntry[];
  matcher: ReturnType<typeof createCredentialMatcher>;
  enrolled: Set<string>;
}

function hold(entries: readonly MirrorCredentialEntry[]): Holder {
  return {
    entries,
    matcher: createCredentialMatcher(entries),
    enrolled: new Set(entries.filter((e) => !e.revoked).map((e) => e.mirrorId)),
  };
}

function storeOver(
  current: () => Holder,
  write: (update: (entries: readonly MirrorCredentialEntry[]) => readonly MirrorCredentialEntry[]) => Promise<void>,
  file: { reload(): Promise<void>; close(): void },
  nowMs: () => number,
): MirrorCredentials {
  return {
    check: (mirrorId, presented) => current().matcher(mirrorId, presented),
    isEnrolled: (mirrorId) => current().enrolled.has(mirrorId),
    async issue(mirrorId) {
      let secret = '';
      await write((entries) => {
        const issued = issueCredential(entries, { mirrorId, nowMs: nowMs() });
        secret = issued.secret;
        return issued.entries;
      });
      return { secret, entry: current().entries.find((e) => e.mirrorId === mirrorId)! };
    },
    async revoke(mirrorId) {
      let outcome: 'revoked' | 'already-revoked' | 'unknown' = 'unknown';
      await write((entries) => {
        const revoked = revokeCredential(entries, { mirrorId, nowMs: nowMs() });
        outcome = revoked.outcome;
        return revoked.entries;
      });
      return outcome;
    },
    list: () => current().entries,
    reload: file.reload,
    close: file.close,
  };
}

/** In memory only (tests, and an app built without a data dir): starts with `entries`, forgets on exit. */
export function createStaticMirrorCredentials(
  entries: readonly MirrorCredentialEntry[] = [],
  nowMs: () => number = Date.now,
): MirrorCredentials {
  let holder = hold(entries);
  return storeOver(
    () => holder,
    async (update) => {
      holder = hold(update(holder.entries));
    },
    { reload: () => Promise.resolve(), close: () => undefined },
    nowMs,
  );
}

export async function readCredentialsFile(path: string): Promise<MirrorCredentialEntry[]> {
  try {
    return parseMirrorCredentials(await readFile(path, 'utf8'), path);
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return [];
    throw err;
  }
}

/** Follows `<dataDir>/mirror-credentials.json` (absent: nothing enrolled); throws when it exists but is malformed. */
export async function openMirrorCredentials(options: {
  dataDir: string;
  pollMs?: number;
  watch?: boolean;
  log: Logger;
  nowMs?: () => number;
}): Promise<MirrorCredentials> {
  const path = join(options.dataDir, MIRROR_CREDENTIALS_FILE);
  let holder = hold([]);
  const file = await followFile({
    path,
    label: 'mirror credentials file',
    parse: parseMirrorCredentials,
    apply: (entries) => {
      holder = hold(entries);
    },
    describe: (entries) => ({ mirrors: entries.length, revoked: entries.filter((e) => e.revoked).length }),
    whenMissing: [],
    ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
    ...(options.watch === undefined ? {} : { watch: options.watch }),
    log: options.log,
  });
  // Writes from this process go one at a time, each from the file as it is now (an operator may have edited it).
  let queue: Promise<void> = Promise.resolve();
  const write = (update: (entries: readonly MirrorCredentialEntry[]) => readonly MirrorCredentialEntry[]): Promise<void> => {
    const next = queue.then(async () => {
      const entries = update(await readCredentialsFile(path));
      await writeFileAtomic(path, serializeMirrorCredentials(entries), { mode: 0o600 });
      await file.reload();
    });
    queue = next.catch(() => undefined);
    return next;
  };
  return storeOver(() => holder, write, file, options.nowMs ?? Date.now);
}
