import { join } from 'node:path';
import { objectRelPath } from '@metasync/shared';

/**
 * pnpm cafs layout:
 *
 *   <dir>/ab/cdef...        raw bytes, named by their sha256 (the object "exists" iff this does)
 *   <dir>/ab/cdef....gz     gzip variant, when kept
 *   <dir>/ab/cdef....br     brotli variant, when kept
 *   <dir>/tmp/              temp files (same filesystem, for rename(); cleared on open)
 */
export const VARIANT_SUFFIX = { identity: '', gzip: '.gz', br: '.br' } as const;
export type Variant = keyof typeof VARIANT_SUFFIX;
export const VARIANTS: readonly Variant[] = ['identity', 'gzip', 'br'];
export const COMPRESSED_VARIANTS = ['gzip', 'br'] as const;

/** Length of a raw file's name: the hash's digits after the 2 of its shard. */
export const RAW_NAME_LENGTH = 62;

export function objectPath(dir: string, sha256: string, variant: Variant = 'identity'): string {
  return join(dir, objectRelPath(sha256) + VARIANT_SUFFIX[variant]);
}

export function shardOf(sha256: string): string {
  return sha256.slice(0, 2);
}
