import { readFileSync } from 'node:fs';
import { hasErrno } from '../errors.js';

/**
 * Which malloc serves a process: glibc's, or one preloaded in its place.
 *
 * The systemd units preload jemalloc (docs/operations.md, "Memory"): after a
 * bulk apply, glibc's main arena keeps its freed pages resident wherever one
 * live allocation sits above them (measured at 20k paths: an 80 MB arena with
 * 8 MB in use, none of it given back), while jemalloc returns idle pages on
 * its own. A preload that fails (the package missing) is only a line on
 * stderr, so the daemons log this at start for the operator to see.
 */
export type MemoryAllocator = 'jemalloc' | 'tcmalloc' | 'mimalloc' | 'glibc' | 'unknown';

/** The allocator a process's memory map shows (`/proc/<pid>/maps` text): the first preloaded one found, else glibc. */
export function allocatorOfMaps(maps: string): MemoryAllocator {
  for (const name of ['jemalloc', 'tcmalloc', 'mimalloc'] as const) {
    if (new RegExp(`/lib${name}[^/\\s]*\\.so`).test(maps)) return name;
  }
  return /\/libc[.-][^/\s]*so/.test(maps) ? 'glibc' : 'unknown';
}

/** This process's allocator; `unknown` where there is no /proc (not Linux). */
export function memoryAllocator(): MemoryAllocator {
  let maps: string;
  try {
    maps = readFileSync('/proc/self/maps', 'utf8');
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return 'unknown';
    throw err;
  }
  return allocatorOfMaps(maps);
}
