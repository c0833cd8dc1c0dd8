import type { ContentEncoding } from '@metasync/shared';
import type { IndexEntry } from '../index-state.js';
import { variantsOf, type ObjectStore, type Variant } from '../store.js';

/**
 * Which precompressed variants each object has, and their sizes: learned with
 * one stat per variant the first time an object is served, then kept (objects
 * never change). Bounded so it cannot outgrow the corpus by much.
 */
export interface ObjectSizes {
  sizes: Partial<Record<Variant, number>>;
  /** Compressed variants present, best first, for chooseEncoding. */
  available: ContentEncoding[];
}

export interface VariantSizes {
  known(sha256: string): ObjectSizes | undefined;
  load(entry: IndexEntry): Promise<ObjectSizes>;
}

const MAX_KNOWN = 500_000;

export function createVariantSizes(store: ObjectStore): VariantSizes {
  const known = new Map<string, ObjectSizes>();
  return {
    known: (sha256) => known.get(sha256),
    async load(entry) {
      let found = known.get(entry.sha256);
      if (found === undefined) {
        const variants = await variantsOf(store, entry.sha256);
        const sizes: Partial<Record<Variant, number>> = { identity: entry.size };
        if (variants.brSize !== undefined) sizes.br = variants.brSize;
        if (variants.gzipSize !== undefined) sizes.gzip = variants.gzipSize;
        found = { sizes, available: (['br', 'gzip'] as const).filter((v) => sizes[v] !== undefined) };
        if (known.size >= MAX_KNOWN) known.clear();
        known.set(entry.sha256, found);
      }
      return found;
    },
  };
}
