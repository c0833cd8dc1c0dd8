import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { findPathId, hexOfDigest, type PathArrays } from '@metasync/shared/tables';
import type { IndexEntry, IndexView } from './index-state.js';
import { EPOCH, GEN, PATHS, SEQ, TIME, type IndexLayout, type SharedIndexHandle } from './index-share.js';

/**
 * The reader's half of the shared index (index-share.ts has the protocol):
 * a worker thread's view of the tables the main thread writes, read in place.
 * `seq` and `time` are those of the generation the last lookup saw, so an
 * answer built right after its lookup names the generation of its entry.
 * Worker threads only: waiting for a switch to end uses Atomics.wait.
 */
export interface IndexReader extends IndexView {
  /** Pulls arrays replaced since the last read (a timer calls it, so idle threads let the old ones go). */
  refresh(): void;
  /** Lookups that overlapped a switch and were done again (tests, diagnostics). */
  retries(): number;
}

export function openIndexReader(options: { handle: SharedIndexHandle; port: MessagePort }): IndexReader {
  const { control, numbers } = options.handle;
  let epoch = -1;
  let paths!: PathArrays;
  let digestBytes!: Buffer;
  let retried = 0;

  function adopt(layout: IndexLayout): void {
    if (layout.epoch <= epoch) return;
    epoch = layout.epoch;
    // Structured cloning turned the arena Buffer into a plain Uint8Array over the same shared bytes.
    const arena = layout.paths.arena;
    paths = { ...layout.paths, arena: Buffer.from(arena.buffer, arena.byteOffset, arena.byteLength) };
    const digest = layout.objects.digest;
    digestBytes = Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength);
  }

  function pull(): void {
    const want = Atomics.load(control, EPOCH);
    for (let message = receiveMessageOnPort(options.port); message !== undefined; message = receiveMessageOnPort(options.port)) {
      adopt(message.message as IndexLayout);
    }
    // The writer posts before it publishes the epoch; this only fails if that order were broken.
    if (epoch < want) throw new Error(`index layout ${want} announced but not received (have ${epoch})`);
  }

  adopt(options.handle.layout);
  const reader: IndexReader = {
    seq: numbers[SEQ]!,
    time: numbers[TIME]!,
    lookup(path) {
      for (;;) {
        const gen = Atomics.load(control, GEN);
        if ((gen & 1) === 1) {
          // A switch is running (O(changed paths)): sleep until it ends instead of spinning.
          Atomics.wait(control, GEN, gen);
          continue;
        }
        if (Atomics.load(control, EPOCH) !== epoch) pull();
        const id = findPathId(paths, path);
        let entry: IndexEntry | undefined;
        if (id !== -1) {
          // Out-of-range reads of a torn view give undefined or a short string; the check below drops them.
          entry = { sha256: hexOfDigest(digestBytes, paths.object[id]!), size: paths.size[id]!, mtime: paths.mtime[id]! };
        }
        const seq = numbers[SEQ]!;
        const time = numbers[TIME]!;
        if (Atomics.load(control, GEN) === gen) {
          reader.seq = seq;
          reader.time = time;
          return entry;
        }
        retried++;
      }
    },
    pathCount: () => numbers[PATHS]!,
    refresh() {
      if (Atomics.load(control, EPOCH) !== epoch) pull();
    },
    retries: () => retried,
  };
  return reader;
}
