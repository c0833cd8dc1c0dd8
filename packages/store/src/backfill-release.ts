import { releaseMemory } from '@metasync/shared/daemon';
import type { BrotliBackfill } from './brotli-backfill.js';

/** Variants made in one run of the backfill from which its garbage is worth a collection (as apply.ts's bulk applies). */
export const RELEASE_MEMORY_FROM_VARIANTS = 5_000;

/**
 * The backfill, releasing memory once it has made a large run of variants, or
 * has finished a sweep it resumed at start (work a stopped process owed).
 * After a bootstrap from a primary that lacks some brotli variants, the
 * backfill reads and compresses those objects after the apply's own release
 * has run (measured at 100k paths: 52k variants, still at work 20 s after the
 * mirror reached the head), and an idle daemon would keep the file bytes,
 * compressed outputs and encoder state it left behind (memory-release.ts).
 * Measured on a primary restarted at a million paths with a sweep owed: 637 MB
 * of RSS once idle, 392 MB after one full collection (heap used 300 -> 115 MB).
 */
export function releasingAfterBackfill(
  backfill: BrotliBackfill,
  options: { fromVariants?: number; release?: () => void } = {},
): BrotliBackfill {
  const fromVariants = options.fromVariants ?? RELEASE_MEMORY_FROM_VARIANTS;
  const release = options.release ?? releaseMemory;
  let added = 0;
  let waiting = false;
  // A sweep resumed from an owed-work file counts as a large run; idle() waits for it.
  void backfill.idle().then(() => {
    if (backfill.sweeps() > 0) release();
  });
  return {
    ...backfill,
    add(sha256s, unlisted = 0) {
      const list = [...sha256s];
      backfill.add(list, unlisted);
      added += list.length + unlisted;
      if (waiting || added < fromVariants) return;
      waiting = true;
      void backfill.idle().then(() => {
        waiting = false;
        added = 0;
        release();
      });
    },
  };
}
