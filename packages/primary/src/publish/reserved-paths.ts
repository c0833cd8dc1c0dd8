/**
 * The daemons' own routes (shared isReservedPath: `health/*`, `metrics`,
 * `sync/*`, `api/*`, ...) are never repository paths (DESIGN invariant 5). A
 * source file `health/fresh` served as content would make a DNS health check
 * read a file, so a stale or drained mirror would look healthy.
 *
 *   watched source  --touch-->  gate: refused (logged, counted), the rest of the tree publishes
 *   publish API / any submit -> publisher gate: the whole submit is refused (no source bypasses it)
 *   data of an older version -> deleted by one ordinary generation when the data dir opens
 *   GET /<reserved>           -> the route, or 404: never a manifest lookup (routes/repository.ts)
 *
 * Deletions of a reserved path always pass: they only remove what shadows a route.
 * The one reserved path content may take: `dist-pins/*`, from the pins source only
 * (dists/pins.ts); the daemons carry it in generations and never serve it.
 */

/** True for a pins document written by the pins source: the gate lets it through. */
export function isOwnPinsPath(path: string, source: Origin): boolean {
  return source === 'pins' && path.startsWith(`${DIST_PINS_SEGMENT}/`);
}
import { DIST_PINS_SEGMENT, isReservedPath, metasyncError } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import type { Manifest } from '../journal/manifest.js';
import type { Origin } from '../journal/record.js';

export interface ReservedPathGate {
  /** True when `path` belongs to a daemon route: the refusal is logged (METASYNC_ERR_PATH_RESERVED) and reported to listeners. */
  refuses(path: string, source: Origin): boolean;
  /** Called once per refusal (the primary's metrics count them by source). */
  onRefused(listener: (source: Origin) => void): () => void;
}

export function createReservedPathGate(log: Logger): ReservedPathGate {
  const listeners = new Set<(source: Origin) => void>();
  return {
    refuses(path, source) {
      if (!isReservedPath(path) || isOwnPinsPath(path, source)) return false;
      const err = metasyncError(
        'METASYNC_ERR_PATH_RESERVED',
        `path ${path} belongs to the daemons' own routes, not the repository; not published`,
        { path, source },
      );
      log.error({ err, path, source }, 'reserved path refused');
      for (const listener of listeners) listener(source);
      return true;
    },
    onRefused(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/**
 * A data dir written before the gate existed can hold reserved paths. They are
 * deleted with one generation of ordinary deletions, which every mirror already
 * applies: it drops them from its index, so no mirror (old or new) keeps
 * serving one, and snapshots taken afterwards no longer list them.
 */
export async function deleteReservedPaths(options: {
  manifest: Manifest;
  submit(changes: { path: string; deleted: true }[], origin: Origin): Promise<{ seq: number }>;
  log: Logger;
}): Promise<void> {
  // Paths one at a time, an entry only for a reserved one: an array of every [path, entry] of a million-path
  // manifest was the restart's peak (RSS 262 -> 580 MB, all garbage a moment later).
  const paths: string[] = [];
  for (const path of options.manifest.keys()) {
    if (!isReservedPath(path)) continue;
    const entry = options.manifest.get(path);
    if (entry !== undefined && !isOwnPinsPath(path, entry.origin)) paths.push(path);
  }
  if (paths.length === 0) return;
  const { seq } = await options.submit(
    paths.map((path) => ({ path, deleted: true })),
    'watch',
  );
  options.log.warn(
    { code: 'METASYNC_ERR_PATH_RESERVED', paths: paths.slice(0, 20), count: paths.length, seq },
    'reserved paths deleted from the repository',
  );
}
