import type { Manifest, ManifestEntry, TableManifest } from './manifest.js';
import type { ManifestTables } from './manifest-view.js';
import type { Origin } from './record.js';

/** The tables as they were at freeze(), unchanged until thaw() (each thaw() counts once). */
export interface FrozenManifest {
  readonly tables: ManifestTables;
  thaw(): void;
}

/**
 * The compact manifest, whose tables another thread may read in place (snapshot-signer.ts). While any
 * freeze is held, sets and deletes wait in a map beside the tables, and every read answers from that map
 * first: a caller sees each change at once, as before. The last thaw applies them in one step.
 *
 * This replaced a copy of every table for each snapshot (about 110 MiB at a million paths, the largest
 * part of a take's memory): what waits now is only what commits during a signing, a few seconds of changes.
 */
export function deferWhileFrozen(tables: TableManifest): Manifest {
  let freezes = 0;
  /** path -> its entry, or null once deleted: every change since the first freeze, the latest per path. */
  const deferred = new Map<string, ManifestEntry | null>();
  /** How many deferred entries name each object: an object a waiting change references is in use. */
  const deferredObjects = new Map<string, number>();
  let sizeChange = 0;
  /** Callers of thawed() waiting for the waiting changes to be applied. */
  let onThaw: (() => void)[] = [];

  const waiting = (path: string): ManifestEntry | null | undefined => (deferred.size === 0 ? undefined : deferred.get(path));
  const get = (path: string): ManifestEntry | undefined => {
    const entry = waiting(path);
    return entry === undefined ? tables.get(path) : (entry ?? undefined);
  };
  const has = (path: string): boolean => {
    const entry = waiting(path);
    return entry === undefined ? tables.has(path) : entry !== null;
  };

  function countObject(entry: ManifestEntry | null | undefined, by: 1 | -1): void {
    if (!entry) return;
    const count = (deferredObjects.get(entry.sha256) ?? 0) + by;
    if (count === 0) deferredObjects.delete(entry.sha256);
    else deferredObjects.set(entry.sha256, count);
  }

  function defer(path: string, entry: ManifestEntry | null): void {
    countObject(deferred.get(path), -1);
    countObject(entry, 1);
    deferred.set(path, entry);
  }

  /**
   * The waiting changes into the tables, each taken out as it goes in. Whatever happens, nothing waits
   * afterwards and the callers of thawed() are woken; a change the tables refused anyway (each was checked
   * when it was made, so only a failed allocation) is thrown after the rest went in.
   */
  function applyDeferred(): void {
    let failure: unknown;
    for (const [path, entry] of deferred) {
      deferred.delete(path);
      try {
        if (entry === null) tables.delete(path);
        else tables.set(path, entry);
      } catch (err) {
        failure ??= err;
      }
    }
    deferredObjects.clear();
    sizeChange = 0;
    const waiters = onThaw;
    onThaw = [];
    for (const resolve of waiters) resolve();
    if (failure !== undefined) throw failure;
  }

  /**
   * `fromTables` items, then the waiting changes': as Map iteration, a path is yielded once, with its value
   * when reached, and one deleted before it is reached is not. A table item whose path waits when reached is
   * put off to the end (its latest value then); a path added while frozen comes at the end too, if it still
   * waits then (one applied by a thaw in the meantime is missed, as the tables' own iteration misses a path
   * added behind it).
   */
  function* merged<T>(
    fromTables: Iterable<T>,
    pathOf: (item: T) => string,
    fromWaiting: (path: string, entry: ManifestEntry) => T | undefined,
    /** Whether `fromTables` yields the path the tables hold (pathsWithOrigin yields only its origin's). */
    inTables: (path: string) => boolean = (path) => tables.has(path),
  ): Generator<T> {
    const putOff = new Set<string>();
    for (const item of fromTables) {
      if (deferred.size === 0) {
        yield item;
        continue;
      }
      const path = pathOf(item);
      if (deferred.has(path)) putOff.add(path);
      else yield item;
    }
    for (const path of deferred.keys()) if (!inTables(path)) putOff.add(path);
    for (const path of putOff) {
      const entry = get(path);
      const item = entry === undefined ? undefined : fromWaiting(path, entry);
      if (item !== undefined) yield item;
    }
  }

  const manifest: Manifest = {
    get size() {
      return tables.size + sizeChange;
    },
    get,
    has,
    set(path, entry) {
      if (freezes === 0) {
        tables.set(path, entry);
        return manifest;
      }
      tables.check(path, entry); // refused now, as the tables would: not at the thaw
      if (!has(path)) sizeChange++;
      defer(path, { ...entry });
      return manifest;
    },
    delete(path) {
      if (freezes === 0) return tables.delete(path);
      if (!has(path)) return false;
      sizeChange--;
      defer(path, null);
      return true;
    },
    keys: () =>
      merged(
        tables.keys(),
        (path) => path,
        (path) => path,
      ),
    values: () => entriesOnly(manifest.entries()),
    entries: () =>
      merged<[string, ManifestEntry]>(
        tables.entries(),
        ([path]) => path,
        (path, entry) => [path, entry],
      ),
    pathsWithOrigin: (origin: Origin) =>
      merged(
        tables.pathsWithOrigin(origin),
        (path) => path,
        (path, entry) => (entry.origin === origin ? path : undefined),
        (path) => tables.get(path)?.origin === origin,
      ),
    // An object a waiting change dropped still counts until the thaw: the GC keeps it one pass longer.
    hasObject: (sha256) => deferredObjects.has(sha256) || tables.hasObject(sha256),
    sorted() {
      if (freezes > 0) throw new Error('sorted() while the manifest is frozen: it would miss the waiting changes');
      return tables.sorted();
    },
    changesWaiting: () => deferred.size > 0,
    thawed: () => (deferred.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => onThaw.push(resolve))),
    freeze() {
      // Its tables would miss the changes made since an earlier freeze (await thawed() first).
      if (deferred.size > 0) throw new Error('freeze() while changes from an earlier freeze wait');
      freezes++;
      let thawed = false;
      return {
        tables: tables.tables(),
        thaw() {
          if (thawed) return;
          thawed = true;
          if (--freezes === 0) applyDeferred();
        },
      };
    },
  };
  return manifest;
}

function* entriesOnly(entries: Iterable<[string, ManifestEntry]>): Generator<ManifestEntry> {
  for (const [, entry] of entries) yield entry;
}
