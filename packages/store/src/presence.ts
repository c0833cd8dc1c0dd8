import * as fsCallback from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hasErrno, isSha256Hex } from '@metasync/shared';
import { createLoopSlices } from '@metasync/shared/daemon';
import { GZIP_NAME_LENGTH, objectPath, RAW_NAME_LENGTH, shardOf, VARIANT_SUFFIX, VARIANTS } from './layout.js';

const stat = promisify(fsCallback.stat);

/** From this many hashes on, listing every shard directory they fall in beats one stat per hash. */
export const LIST_SHARDS_FROM = 2048;

/** The file's size, or undefined when it does not exist. */
export async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** A shard directory's names; empty when it does not exist yet. */
async function namesIn(dir: string, shard: string): Promise<string[]> {
  try {
    return await readdir(join(dir, shard));
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return [];
    throw err;
  }
}

/** Present: its gzip file or its raw file exists (layout.ts). The gzip file is looked for first: most objects have one. */
export async function hasObject(dir: string, sha256: string): Promise<boolean> {
  return (await sizeOf(objectPath(dir, sha256, 'gzip'))) !== undefined || (await sizeOf(objectPath(dir, sha256))) !== undefined;
}

/**
 * No file of the object exists, not even a leftover (raw, gzip or brotli): what a put's `knownClean` claims.
 * Synchronous, for a caller off the event loop's hot path (the watcher's prepare step) that asks per object.
 */
export function hasNoFileSync(dir: string, sha256: string): boolean {
  return VARIANTS.every((variant) => !fsCallback.existsSync(objectPath(dir, sha256, variant)));
}

/** Which of `sha256s` are present: one or two stats each for a few, one listing per shard for many. */
export async function presentAmong(dir: string, sha256s: readonly string[]): Promise<Set<string>> {
  if (sha256s.length < LIST_SHARDS_FROM) {
    const found = await Promise.all(sha256s.map((sha256) => hasObject(dir, sha256)));
    return new Set(sha256s.filter((_, index) => found[index] === true));
  }
  return (await surveyAmong(dir, sha256s)).present;
}

export interface Survey {
  present: Set<string>;
  /**
   * Those of the hashes with any file in their shard (present, or a leftover such as a lone brotli file), when
   * the shards were listed; undefined when they were checked by stat. One not in it has no file at all.
   */
  withFiles: Set<string> | undefined;
}

/** presentAmong, and from a listing also which hashes have any file: a put of one that has none need not look. */
export async function surveyAmong(dir: string, sha256s: readonly string[]): Promise<Survey> {
  if (sha256s.length < LIST_SHARDS_FROM) return { present: await presentAmong(dir, sha256s), withFiles: undefined };
  const present = new Set<string>();
  const withFiles = new Set<string>();
  // In 5 ms slices: a bootstrap asks about a million hashes, and the mirror serves meanwhile.
  const slices = createLoopSlices();
  const wanted = new Set<string>();
  const shards = new Set<string>();
  for (const sha256 of sha256s) {
    const turn = slices.turn();
    if (turn !== undefined) await turn;
    wanted.add(sha256);
    shards.add(shardOf(sha256));
  }
  for (const shard of shards) {
    // A raw file's name is the hash's remaining 62 hex digits, a gzip file's that plus ".gz" (a brotli file
    // alone is no object: the leftover of a crashed removal).
    for (const name of await namesIn(dir, shard)) {
      const turn = slices.turn();
      if (turn !== undefined) await turn;
      const sha256 = shard + name.slice(0, RAW_NAME_LENGTH);
      if (!wanted.has(sha256)) continue;
      withFiles.add(sha256);
      if (name.length === RAW_NAME_LENGTH || (name.length === GZIP_NAME_LENGTH && name.endsWith('.gz'))) present.add(sha256);
    }
  }
  return { present, withFiles };
}

/**
 * The shas with any file (raw or variant) in shard `shard`, so a collector also finds a crashed removal's leftovers.
 * Sorted, an object's files are neighbours (stem, stem.br, stem.gz): each is named once without a Set, and no
 * name is rewritten but to cut its suffix. At a million objects a Set and a regex replace per name made the
 * object GC's pass grow the primary's heap by ~130 MB of short-lived strings (with 4 shards listed at a time).
 */
export async function listShard(dir: string, shard: string): Promise<string[]> {
  const names = await namesIn(dir, shard);
  names.sort();
  const shas: string[] = [];
  // The stem last named: a foreign name sorted between an object's files (`<stem>.br~`) must not make it named twice.
  let previous = '';
  for (const name of names) {
    const stem =
      name.length === GZIP_NAME_LENGTH && (name.endsWith(VARIANT_SUFFIX.gzip) || name.endsWith(VARIANT_SUFFIX.br))
        ? name.slice(0, RAW_NAME_LENGTH)
        : name;
    if (stem === previous) continue;
    const sha256 = shard + stem;
    if (!isSha256Hex(sha256)) continue;
    previous = stem;
    shas.push(sha256);
  }
  return shas;
}

/** The shas in shard directory `shard` that keep a gzip variant but no brotli one: one listing, nothing kept beyond it. */
export async function lackingBrotli(dir: string, shard: string): Promise<string[]> {
  const names = await namesIn(dir, shard);
  const withBrotli = new Set<string>();
  for (const name of names) if (name.endsWith(VARIANT_SUFFIX.br)) withBrotli.add(name.slice(0, -VARIANT_SUFFIX.br.length));
  const lacking: string[] = [];
  for (const name of names) {
    if (name.length !== GZIP_NAME_LENGTH || !name.endsWith(VARIANT_SUFFIX.gzip)) continue;
    const stem = name.slice(0, RAW_NAME_LENGTH);
    if (!withBrotli.has(stem) && isSha256Hex(shard + stem)) lacking.push(shard + stem);
  }
  return lacking;
}
