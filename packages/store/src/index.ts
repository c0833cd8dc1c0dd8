export { openObjectStore, variantsOf, DEFAULT_PUT_CONCURRENCY, type ObjectInput, type ObjectStore, type StoredObject } from './store.js';
export { VARIANT_SUFFIX, objectPath, type Variant } from './layout.js';
export { BROTLI_QUALITY, LARGE_OBJECT_BYTES, MIN_COMPRESS_BYTES, gzipLevelFor, variantsFor, type GivenVariants } from './compression.js';
export { SYNCFS_THRESHOLD_FILES } from './durability.js';
export { LIST_SHARDS_FROM, hasNoFileSync, type Survey } from './presence.js';
export { storeError } from './errors.js';
export { BROTLI_OWED_FILE, createBrotliBackfill, type BrotliBackfill } from './brotli-backfill.js';
export { releasingAfterBackfill, RELEASE_MEMORY_FROM_VARIANTS } from './backfill-release.js';
