import { join } from 'node:path';
import { objectRelPath } from '@metasync/shared';

/**
 * pnpm cafs layout, one file per object on the write path:
 *
 *   <dir>/ab/cdef....gz     gzip variant; when the policy keeps one it is the object's only copy: the raw
 *                           bytes are its decoding (served compressed nearly always, decoded when asked)
 *   <dir>/ab/cdef...        raw bytes, only for an object that keeps no gzip variant (too small, or not
 *                           smaller compressed), or written beside its gzip variant by an older version
 *   <dir>/ab/cdef....br     brotli variant, when kept (often added after the commit: brotli-backfill.ts)
 *   <dir>/tmp/              temp files (same filesystem, for rename(); cleared on open)
 *
 * An object exists iff its gzip file or its raw file does. Writing one file
 * per object instead of three is most of a bulk write's cost: on ext4, 100,000
 * synthetic objects took 3.4 s written as one file each, 10.2 s as gzip plus raw
 * (temp + rename) and 20.7 s with a brotli file (temp + rename) too.
 */
export const VARIANT_SUFFIX = { identity: '', gzip: '.gz', br: '.br' } as const;
export type Variant = keyof typeof VARIANT_SUFFIX;
export const VARIANTS: readonly Variant[] = ['identity', 'gzip', 'br'];
export const COMPRESSED_VARIANTS = ['gzip', 'br'] as const;

/** Length of a raw file's name: the hash's digits after the 2 of its shard. */
export const RAW_NAME_LENGTH = 62;
/** Length of a gzip file's name. */
export const GZIP_NAME_LENGTH = RAW_NAME_LENGTH + VARIANT_SUFFIX.gzip.length;

/**
 * The most a stored gzip variant may decode to. Larger than any object the daemons accept (source files
 * and upstream bodies are capped at 64 MiB), so it bounds only a damaged or foreign file.
 */
export const MAX_DECODED_OBJECT_BYTES = 512 * 1024 * 1024;

export function objectPath(dir: string, sha256: string, variant: Variant = 'identity'): string {
  return join(dir, objectRelPath(sha256) + VARIANT_SUFFIX[variant]);
}

export function shardOf(sha256: string): string {
  return sha256.slice(0, 2);
}
