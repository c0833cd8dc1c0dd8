import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Gives memory back after bulk work: a mirror's bulk apply (bootstrap, resync,
 * a big burst), a primary's ingest of a large tree or its start-up reconcile.
 *
 * Applying 100k paths allocates ~150 MB that is garbage a moment later (the
 * batch body, its parse, the index record, pack chunks), while the index that
 * stays is ~50 MB. V8 collects that garbage only when allocation goes on, and
 * an idle mirror, or one serving from its hot cache, allocates little: measured
 * at 100k paths, RSS stayed ~270 MB after a bootstrap against ~150 MB after one
 * full collection. So a bulk apply runs one full collection as it commits and
 * one shortly after it returns (once its callers dropped the batch), and V8
 * then unmaps the freed pages. It costs two pauses of tens of milliseconds per
 * bulk apply, never anything per request. `gc` is exposed by flag at run time, so no node option is needed.
 *
 * The second of the two is V8's memory-reducing collection (the one it runs
 * on a low-memory notification): a bulk apply's allocation rate grows the young
 * generation to its maximum (128 MB of semi-spaces on Node 24), and a plain
 * full collection leaves it that size, so a mirror measured at 20k paths kept
 * 100-160 MB of heap for ~30 MB used after a bootstrap. The reducing one shrinks
 * it back and compacts the old generation; it costs about twice a plain one, so
 * it runs once per bulk apply, when the batch is garbage, and not in
 * releaseMemorySoon, which a primary calls while it serves publishes.
 */
type ExposedGc = (options?: { type: 'major'; execution: 'sync'; flavor: 'regular' | 'last-resort' }) => void;
let exposed: ExposedGc | undefined;
let scheduled: NodeJS.Timeout | undefined;

function exposedGc(): ExposedGc {
  if (exposed === undefined) {
    setFlagsFromString('--expose-gc');
    exposed = runInNewContext('gc') as ExposedGc;
  }
  return exposed;
}

/**
 * One full collection now, without the memory-reducing one: for a long step-by-step job (a start-up walk of a
 * million files) whose garbage would otherwise fill the old generation before V8 collects it.
 */
export function fullCollection(): void {
  exposedGc()();
}

function memoryReducingCollection(): void {
  exposedGc()({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

/**
 * A full collection now (the bytes, parse trees and records of the apply that
 * just committed), and a memory-reducing one `delayMs` later, once the caller
 * dropped the batch it still holds; calls while one is pending coalesce into it.
 */
export function releaseMemory(delayMs = 1_000): void {
  fullCollection();
  if (scheduled !== undefined) return;
  scheduled = setTimeout(() => {
    scheduled = undefined;
    memoryReducingCollection();
  }, delayMs);
  // Never what keeps a stopping process alive.
  scheduled.unref();
}

let debounced: NodeJS.Timeout | undefined;

/**
 * One full collection `delayMs` after the last call: for work that comes in
 * many steps (a primary commits an ingest in generations of 2,000 paths), so a
 * run of large commits costs one pause when it ends, not one per step.
 */
export function releaseMemorySoon(delayMs = 2_000): void {
  if (debounced !== undefined) clearTimeout(debounced);
  debounced = setTimeout(() => {
    debounced = undefined;
    fullCollection();
  }, delayMs);
  debounced.unref();
}
