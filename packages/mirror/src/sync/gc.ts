import type { ObjectStore } from '@metasync/store';
import type { IndexLog } from '../index/index-log.js';

/**
 * Grace window (invariant 6): an object that generation N stopped referencing
 * stays on disk (servable by any response that resolved it under N-1, and
 * reusable by hash) until `graceMs` after N became visible. The dereference
 * list is in apply order, hence in time order, so collection walks its head
 * and stops at the first young entry: cost O(collected), never a scan of the
 * store. Runs inside the sync worker, so it never races an apply that is about
 * to reuse an object by hash; an object referenced again is skipped. The scan
 * of the young tail is O(grace window's changes), not O(store).
 */
export async function collectGarbage(input: { log: IndexLog; store: ObjectStore; graceMs: number; nowMs: number }): Promise<number> {
  const { log, store } = input;
  let expired = 0;
  while (expired < log.derefs.length && log.derefs[expired]!.atMs + input.graceMs <= input.nowMs) expired++;
  if (expired === 0) return 0;
  const batch = log.derefs.slice(0, expired);
  // Dropped again later (after a re-reference): that younger entry owns its grace window.
  const stillYoung = new Set(log.derefs.slice(expired).map((d) => d.sha256));
  let collected = 0;
  for (const deref of batch) {
    if (log.state.hasObject(deref.sha256) || stillYoung.has(deref.sha256)) continue;
    await store.remove(deref.sha256);
    collected++;
  }
  log.derefs.splice(0, expired);
  return collected;
}
