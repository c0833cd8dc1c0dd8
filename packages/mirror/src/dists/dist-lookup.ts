/**
 * Which archive a `/dists/<package>/<reference>.<type>` URL means, from the
 * metadata of the mirror's current generation: the package's p2 files
 * (tagged, then dev), expanded only as far as `dist` (composer/2.0 minified:
 * a version without `dist` inherits the previous one's, `"__unset"` removes it).
 * The URL's reference is Composer's `%reference%`: the dist reference when it is
 * hex, else its md5 (ComposerMirror::processUrl).
 */
import { createHash } from 'node:crypto';
import { p2PathFor, type DistKey } from '@metasync/shared';
import type { ObjectStore } from '@metasync/store';
import type { IndexView } from '../index/index-state.js';

export interface DistSource {
  /** The origin URL the metadata names. */
  url: string;
  /** Composer's sha1 `shasum`, when the metadata has a non-empty one. */
  shasum: string | undefined;
}

type Json = unknown;

function urlReference(reference: string): string {
  return /^[a-f0-9]*$/.test(reference) ? reference : createHash('md5').update(reference).digest('hex');
}

function matches(dist: Json, key: DistKey): dist is { url: string; shasum?: unknown } {
  if (typeof dist !== 'object' || dist === null) return false;
  const { type, url, reference } = dist as Record<string, unknown>;
  return type === key.type && typeof url === 'string' && typeof reference === 'string' && urlReference(reference) === key.reference;
}

/** The dist `key` names in `document` (a p2 file's bytes), or undefined. */
export function findDist(document: Buffer, key: DistKey): DistSource | undefined {
  let parsed: Json;
  try {
    parsed = JSON.parse(document.toString('utf8'));
  } catch {
    return undefined;
  }
  const versions = (parsed as { packages?: Record<string, Json> } | null)?.packages?.[key.package];
  if (!Array.isArray(versions)) return undefined;
  let dist: Json;
  for (const version of versions) {
    if (typeof version !== 'object' || version === null) continue;
    if (Object.hasOwn(version, 'dist')) {
      const value = (version as { dist: Json }).dist;
      dist = value === '__unset' ? undefined : value;
    }
    if (matches(dist, key)) {
      const shasum = typeof dist.shasum === 'string' && /^[0-9a-f]{40}$/.test(dist.shasum) ? dist.shasum : undefined;
      return { url: dist.url, shasum };
    }
  }
  return undefined;
}

/** Looks `key` up in the generation the index serves now (tagged file first, then dev). */
export async function lookupDist(options: { index: IndexView; store: ObjectStore; key: DistKey }): Promise<DistSource | undefined> {
  for (const dev of [false, true]) {
    const entry = options.index.lookup(p2PathFor(options.key.package, dev));
    if (entry === undefined) continue;
    const found = findDist(await options.store.read(entry.sha256), options.key);
    if (found !== undefined) return found;
  }
  return undefined;
}
