import { lstatSync } from 'node:fs';
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
  // What a walk would have found (tree-walk.ts takes files and symbolic links; a directory there is not one).
  const entry = lstatSync(`${rootReal}/${path}`, { throwIfNoEntry: false });
  if (entry !== undefined && (entry.isFile() || entry.isSymbolicLink())) {
    ingest.touch(path);
    return false;
  }
  ingest.remove(path);
  return true;
}
