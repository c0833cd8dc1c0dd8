/**
 * `--dists-url`: every dist entry of a p2 file gains a Composer dist mirror on
 * the mirror network, tried before the entry's own `url` (which stays as the
 * fallback: Composer moves on to it when the mirror fails).
 *
 *   "dist": {"type": "zip", "url": "https://codehost/...", "reference": "abc",
 *            "mirrors": [{"url": "<distsUrl>/dists/%package%/%reference%.%type%", "preferred": true}]}
 *
 * and the root packages.json names the same template as the repository's dist mirror.
 *
 * Pure: bytes in, bytes out. The publisher applies it to every p2 file (and the root) it
 * stores (publisher.ts), whichever source produced it, so watched, published and
 * followed metadata are signed with the same mirrors. Idempotent: a document
 * that already carries the mirror comes back as the same Buffer, so a watched
 * tree rescanned does not republish. A file that is not a JSON object with
 * `packages` is returned untouched (the publisher stores what the source wrote).
 */

/**
 * Why both places: Composer's ComposerRepository replaces every package's dist mirrors with the
 * repository's own (root `mirrors` with `dist-url`; Composer 2.5, ComposerRepository::createPackages),
 * so a client resolving from the repository uses the root entry, writes it into each dist of its
 * composer.lock, and `composer install` from that lock (ArrayLoader) uses the lock's. The per-dist
 * entry is what other readers of p2 files (and Composer, should it stop overwriting) see.
 */
export const ROOT_PATH = 'packages.json';

/** The paths whose documents carry dist entries Composer 2 reads: `p2/<vendor>/<name>.json` and `~dev.json`. */
export function isP2Path(path: string): boolean {
  return /^p2\/[^/]+\/[^/]+\.json$/.test(path);
}

/** The bytes the publisher stores for a source's `content` at `path`: dist mirrors added to p2 files and the root when `distsUrl` is set. */
export function storedContentFor(path: string, content: Buffer, distsUrl: string | undefined): Buffer {
  if (distsUrl === undefined) return content;
  if (isP2Path(path)) return withDistMirrors(content, distsUrl);
  return path === ROOT_PATH ? withRootDistMirror(content, distsUrl) : content;
}

/** The Composer mirror URL template for `distsUrl` (the name clients resolve, e.g. the DNS service name). */
export function distMirrorUrl(distsUrl: string): string {
  return `${distsUrl.replace(/\/+$/, '')}/dists/%package%/%reference%.%type%`;
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Puts the mirror first in `dist.mirrors`; false when it is already there. */
function addMirror(dist: Record<string, Json>, url: string): boolean {
  const mirrors = Array.isArray(dist.mirrors) ? dist.mirrors : [];
  if (mirrors.some((mirror) => isObject(mirror) && mirror.url === url)) return false;
  dist.mirrors = [{ url, preferred: true }, ...mirrors];
  return true;
}

/**
 * The root `packages.json` with `"mirrors": [{"dist-url": <template>, "preferred": true}]` first in its
 * mirrors; the same Buffer when it is there already or the document is not a JSON object.
 */
export function withRootDistMirror(document: Buffer, distsUrl: string): Buffer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(document.toString('utf8'));
  } catch {
    return document;
  }
  if (!isObject(parsed)) return document;
  const url = distMirrorUrl(distsUrl);
  const mirrors = Array.isArray(parsed.mirrors) ? parsed.mirrors : [];
  if (mirrors.some((mirror) => isObject(mirror) && mirror['dist-url'] === url)) return document;
  parsed.mirrors = [{ 'dist-url': url, preferred: true }, ...mirrors];
  return Buffer.from(JSON.stringify(parsed));
}

/**
 * `document` (a p2 file's bytes) with the dist mirror added to every version's `dist`
 * that has a string `url`; the same Buffer when nothing needed adding. In the
 * minified format a later version without `dist` inherits the previous one's, mirror
 * included, and `"__unset"` stays as it is.
 */
export function withDistMirrors(document: Buffer, distsUrl: string): Buffer {
  // Cheap exit for files without any dist (most dev-only or metapackage files still have one; this skips the rest).
  if (document.indexOf('"dist"') === -1) return document;
  let parsed: unknown;
  try {
    parsed = JSON.parse(document.toString('utf8'));
  } catch {
    return document;
  }
  if (!isObject(parsed) || !isObject(parsed.packages)) return document;
  const url = distMirrorUrl(distsUrl);
  let changed = false;
  for (const versions of Object.values(parsed.packages)) {
    // p2 files hold arrays; the Composer 1 layout (an object keyed by version) gets the same treatment.
    const list = Array.isArray(versions) ? versions : isObject(versions) ? Object.values(versions) : [];
    for (const version of list) {
      if (!isObject(version) || !isObject(version.dist) || typeof version.dist.url !== 'string') continue;
      if (addMirror(version.dist, url)) changed = true;
    }
  }
  return changed ? Buffer.from(JSON.stringify(parsed)) : document;
}
