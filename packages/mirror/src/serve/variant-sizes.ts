import { statSync } from 'node:fs';
import type { ContentEncoding } from '@metasync/shared';
import { variantsOf, type ObjectStore, type Variant } from '@metasync/store';
import type { IndexEntry } from '../index/index-state.js';
import { createBoundedMemo } from './bounded-memo.js';

/**
 * Which precompressed variants each object has, and their sizes: learned with
 * one stat per variant the first time an object is served, then kept (objects
 * never change). Bounded (two generations of KNOWN_GENERATION, ~250 bytes an
 * object) so a long tail of requests does not grow it with the repository.
 */
export interface ObjectSizes {
  sizes: Partial<Record<Variant, number>>;
  /** Compressed variants present, best first, for chooseEncoding. */
  available: readonly ContentEncoding[];
  /** Set while the brotli variant is missing: after this time the sizes are looked up again. */
  recheckAtMs?: number;
  /** When the brotli variant was first found missing (kept across rechecks, so the looking stops). */
  brotliMissingSinceMs?: number;
}

/** How long an object served without its brotli variant is served so before the variant is looked for again. */
const RECHECK_MISSING_BROTLI_MS = 2_000;
/**
 * How long a missing brotli variant is looked for. A backfill makes it within minutes of the commit (it waits
 * at most 60 s to start); one that comes late (the queue overflowed: the sweep after it takes minutes at a
 * million objects) or never (a restart dropped it) would otherwise cost a stat per object every 2 s for as long
 * as the object is served. A variant made later is seen once the object leaves the memo.
 */
export const LOOK_FOR_MISSING_BROTLI_MS = 10 * 60_000;

export interface VariantSizes {
  known(sha256: string): ObjectSizes | undefined;
  load(entry: IndexEntry): Promise<ObjectSizes>;
  /** The same with synchronous stats (the fast path never yields); undefined when a stat fails. */
  loadSync(entry: IndexEntry): ObjectSizes | undefined;
}

const KNOWN_GENERATION = 32_768;

export function createVariantSizes(store: Pick<ObjectStore, 'pathOf'>): VariantSizes {
  const known = createBoundedMemo<string, ObjectSizes>(KNOWN_GENERATION);
  function remember(entry: IndexEntry, variants: { gzipSize?: number | undefined; brSize?: number | undefined }): ObjectSizes {
    const sizes: Partial<Record<Variant, number>> = { identity: entry.size };
    if (variants.brSize !== undefined) sizes.br = variants.brSize;
    if (variants.gzipSize !== undefined) sizes.gzip = variants.gzipSize;
    const found: ObjectSizes = { sizes, available: AVAILABLE[(sizes.br === undefined ? 0 : 2) + (sizes.gzip === undefined ? 0 : 1)] ?? [] };
    // gzip without brotli: the brotli variant may still be on its way (a backfill after a bulk apply), so look
    // again later, for a while.
    if (sizes.gzip !== undefined && sizes.br === undefined) {
      const nowMs = Date.now();
      const since = known.get(entry.sha256)?.brotliMissingSinceMs ?? nowMs;
      found.brotliMissingSinceMs = since;
      if (nowMs - since < LOOK_FOR_MISSING_BROTLI_MS) found.recheckAtMs = nowMs + RECHECK_MISSING_BROTLI_MS;
    }
    known.set(entry.sha256, found);
    return found;
  }
  const knownNow = (sha256: string): ObjectSizes | undefined => {
    const found = known.get(sha256);
    return found?.recheckAtMs !== undefined && Date.now() >= found.recheckAtMs ? undefined : found;
  };
  return {
    known: knownNow,
    async load(entry) {
      return knownNow(entry.sha256) ?? remember(entry, await variantsOf(store, entry.sha256));
    },
    loadSync(entry) {
      try {
        const gzip = statSync(store.pathOf(entry.sha256, 'gzip'), { throwIfNoEntry: false });
        const br = statSync(store.pathOf(entry.sha256, 'br'), { throwIfNoEntry: false });
        return remember(entry, { gzipSize: gzip?.size, brSize: br?.size });
      } catch (err) {
        // The careful route stats again and reports the error.
        if (err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string') return undefined;
        throw err;
      }
    },
  };
}

/** The four possible lists, shared by every object (best first): indexed by br * 2 + gzip. */
const AVAILABLE: readonly (readonly ContentEncoding[])[] = [[], ['gzip'], ['br'], ['br', 'gzip']];
