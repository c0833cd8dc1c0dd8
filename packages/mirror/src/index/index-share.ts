import type { ObjectArrays, PathArrays } from '@metasync/shared/tables';

/**
 * The writer's half of an index shared with serving threads (the reader's
 * half is index-reader.ts). The tables' arrays live in SharedArrayBuffers;
 * the main thread changes them in place, worker threads read them in place.
 * No copy per worker, and nothing to send per generation but a counter.
 *
 *   control  Int32Array (shared)   [0] gen    odd while a switch runs, bumped twice per switch
 *                                  [1] epoch  bumped when an array was replaced
 *   numbers  Float64Array (shared) [0] seq  [1] time  [2] paths
 *
 *   writer: gen++ (odd) ── change tables, seq, time ── arrays replaced?
 *           ── post {epoch+1, arrays} to every reader, epoch++ ── gen++ (even), notify
 *   reader: g = gen (odd: wait) ── epoch moved? pull the posted arrays ── look up,
 *           copy the answer out ── gen still g? done : again
 *
 * A seqlock: a reader never blocks the writer, and a lookup that overlapped
 * a switch is thrown away, so it is wholly N or wholly N+1 (invariant 3).
 * Arrays are replaced (growth, slot rebuild, arena compaction, a snapshot's
 * clear) only inside the window, and their new buffers are posted before the
 * window closes, so a reader that sees the new epoch finds them on its port.
 * Old buffers live until every reader has pulled the new ones (readers pull
 * on a timer too, so an idle thread does not keep them).
 */
export interface IndexLayout {
  epoch: number;
  paths: PathArrays;
  objects: ObjectArrays;
}

/** What a reader thread starts from (structured-clonable: the arrays share their buffers). */
export interface SharedIndexHandle {
  control: Int32Array;
  numbers: Float64Array;
  layout: IndexLayout;
}

export interface IndexSharing {
  /** The current words and arrays, for a reader thread being started. */
  handle(): SharedIndexHandle;
  /** `listener` gets every new layout, inside the write window; returns the unsubscribe. */
  onLayout(listener: (layout: IndexLayout) => void): () => void;
}

export const GEN = 0;
export const EPOCH = 1;
export const SEQ = 0;
export const TIME = 1;
export const PATHS = 2;

export interface IndexShare {
  numbers: Float64Array;
  sharing: IndexSharing;
  /** Runs `change` inside the seqlock window (re-entrant: only the outermost call opens and closes it). */
  write<T>(change: () => T, pathCount: () => number): T;
}

export function createIndexShare(arrays: { paths: () => PathArrays; objects: () => ObjectArrays }): IndexShare {
  const control = new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
  const numbers = new Float64Array(new SharedArrayBuffer(3 * Float64Array.BYTES_PER_ELEMENT));
  let layout: IndexLayout = { epoch: 0, paths: arrays.paths(), objects: arrays.objects() };
  const listeners = new Set<(layout: IndexLayout) => void>();
  let depth = 0;

  function close(pathCount: number): void {
    numbers[PATHS] = pathCount;
    const paths = arrays.paths();
    const objects = arrays.objects();
    if (paths !== layout.paths || objects !== layout.objects) {
      layout = { epoch: layout.epoch + 1, paths, objects };
      for (const listener of listeners) listener(layout);
      Atomics.store(control, EPOCH, layout.epoch);
    }
    Atomics.add(control, GEN, 1);
    Atomics.notify(control, GEN);
  }

  return {
    numbers,
    sharing: {
      handle: () => ({ control, numbers, layout }),
      onLayout(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    },
    write(change, pathCount) {
      if (depth++ === 0) Atomics.add(control, GEN, 1);
      try {
        return change();
      } finally {
        // Closed even when `change` threw: readers must never wait on a window nobody will close.
        if (--depth === 0) close(pathCount());
      }
    },
  };
}
