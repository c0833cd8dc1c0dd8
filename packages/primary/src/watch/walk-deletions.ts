import { lstatSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { SourceIngest } from './ingest.js';

/**
 * A published path a walk did not find is deleted, unless it is a file again by now.
 *
 * A walk reads each directory once. A file deleted before its directory was read and created again after
 * is missing from the walk, while its create event, handled meanwhile, became a pending touch that
 * `ingest.remove` forgets: the file would stay unpublished (a 404 on every mirror and on the primary) until
 * the next rescan. The look and the removal are one synchronous step, so no event of the path is handled
 * between them; one that comes later (the file deleted again) is handled after, in order.
 *
 * Returns true when the path was removed, false when it was touched instead.
 */
export function removeUnlessBack(rootReal: string, path: string, ingest: Pick<SourceIngest, 'touch' | 'remove'>): boolean {
  if (isWalkableFile(rootReal, path)) {
    ingest.touch(path);
    return false;
  }
  ingest.remove(path);
  return true;
}

/**
 * What a walk would find at `path`: a file or a symbolic link (tree-walk.ts takes both), in directories that are
 * directories. A walk does not enter a directory that became a symbolic link (an `ln -sfn` deploy swap), so a
 * path below one is gone for it, and for this check too.
 */
function isWalkableFile(rootReal: string, path: string): boolean {
  const absolute = join(rootReal, path);
  const entry = lstatSync(absolute, { throwIfNoEntry: false });
  if (entry === undefined || !(entry.isFile() || entry.isSymbolicLink())) return false;
  try {
    return realpathSync(dirname(absolute)) === dirname(absolute);
  } catch {
    return false; // its directory went meanwhile
  }
}
