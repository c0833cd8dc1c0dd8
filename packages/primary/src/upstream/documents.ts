/**
 * The upstream's documents, checked before anything of them is used: its root
 * `packages.json`, its package list, its change feed, and each p2 file. What
 * fails a check is METASYNC_ERR_UPSTREAM_INVALID with the URL or path and a
 * `reason` (the metric label); nothing of it is published.
 */
import { isComposerPackageName, metasyncError, p2PathFor } from '@metasync/shared';
import { z } from 'zod';

export interface UpstreamRoot {
  /** Absolute p2 URL template: `%package%` is replaced by `vendor/name` or `vendor/name~dev`. */
  metadataUrl: string;
  changesUrl: string;
  /** The package list's URL (`list`, else `/packages/list.json` beside the change feed); undefined with `available-packages`. */
  listUrl: string | undefined;
  availablePackages: string[] | undefined;
}

export type UpstreamAction =
  { type: 'update'; key: string; timeS: number } | { type: 'delete'; key: string; timeS: number } | { type: 'resync' };

export interface UpstreamChanges {
  actions: UpstreamAction[];
  /** The next `since` cursor, 1/10000 s. */
  timestamp: number;
  /** Actions dropped for naming no valid package (`../x`, upper case, ...). */
  refusedKeys: string[];
}

function invalid(message: string, details: Record<string, unknown>): Error {
  return metasyncError('METASYNC_ERR_UPSTREAM_INVALID', message, details);
}

function parseJson(bytes: Buffer, url: string, reason: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw metasyncError('METASYNC_ERR_UPSTREAM_INVALID', `${url} is not valid JSON`, { url, reason }, err);
  }
}

function httpUrl(value: string, base: string, what: string): string {
  let url: URL;
  try {
    url = new URL(value, base);
  } catch {
    throw invalid(`${what} ${JSON.stringify(value)} of ${base} is not a URL`, { url: base, reason: 'root' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid(`${what} ${JSON.stringify(value)} of ${base} is not http(s)`, { url: base, reason: 'root' });
  }
  return url.href;
}

/** `https://repo.packagist.org` -> `https://repo.packagist.org/packages.json`; a URL ending in `.json` is taken as is. */
export function rootUrlOf(upstream: string): string {
  if (new URL(upstream).pathname.endsWith('.json')) return upstream;
  return new URL('packages.json', upstream.endsWith('/') ? upstream : `${upstream}/`).href;
}

const rootSchema = z.object({
  'metadata-url': z.string().includes('%package%'),
  'metadata-changes-url': z.string().optional(),
  list: z.string().optional(),
  'available-packages': z.array(z.string()).optional(),
});

/** `metadata-url` may be relative (a metasync primary) or absolute (packagist.org since 2025): both resolve against the root's URL. */
export function parseUpstreamRoot(bytes: Buffer, rootUrl: string): UpstreamRoot {
  const parsed = rootSchema.safeParse(parseJson(bytes, rootUrl, 'root'));
  if (!parsed.success) {
    throw invalid(`${rootUrl} is not a Composer v2 root (needs a "metadata-url" with %package%)`, { url: rootUrl, reason: 'root' });
  }
  const root = parsed.data;
  const changesUrl = httpUrl(root['metadata-changes-url'] ?? '/metadata/changes.json', rootUrl, 'metadata-changes-url');
  const available = root['available-packages'];
  return {
    // Resolved with a placeholder URL parsers leave alone, then put back.
    metadataUrl: httpUrl(root['metadata-url'].replaceAll('%package%', 'PACKAGE-PLACEHOLDER'), rootUrl, 'metadata-url').replaceAll(
      'PACKAGE-PLACEHOLDER',
      '%package%',
    ),
    changesUrl,
    listUrl:
      root.list !== undefined
        ? httpUrl(root.list, rootUrl, 'list')
        : available === undefined
          ? httpUrl('/packages/list.json', changesUrl, 'list')
          : undefined,
    availablePackages: root.list === undefined ? available : undefined,
  };
}

/** Splits a package list into valid Composer names and the refused rest (traversal, upper case, junk). */
export function partitionNames(names: readonly unknown[]): { valid: string[]; refused: string[] } {
  const valid = new Set<string>();
  const refused: string[] = [];
  for (const name of names) {
    if (typeof name === 'string' && isComposerPackageName(name)) valid.add(name);
    else refused.push(String(name).slice(0, 200));
  }
  return { valid: [...valid], refused };
}

/** Packagist's `/packages/list.json`: `{"packageNames": [...]}`. */
export function parsePackageList(bytes: Buffer, url: string): unknown[] {
  const document = parseJson(bytes, url, 'list') as { packageNames?: unknown } | null;
  if (!Array.isArray(document?.packageNames)) throw invalid(`${url} has no "packageNames" array`, { url, reason: 'list' });
  return document.packageNames as unknown[];
}

const changesSchema = z.object({
  actions: z.array(z.object({ type: z.string(), package: z.string(), time: z.number().optional() })),
  timestamp: z.number().int().nonnegative(),
});

/** `vendor/name` or `vendor/name~dev`, each part a valid Composer name. */
export function isPackageKey(key: string): boolean {
  return isComposerPackageName(key.endsWith('~dev') ? key.slice(0, -4) : key);
}

export function parseChanges(bytes: Buffer, url: string): UpstreamChanges {
  const parsed = changesSchema.safeParse(parseJson(bytes, url, 'changes'));
  if (!parsed.success) throw invalid(`${url} is not a change feed ({"actions": [...], "timestamp": T})`, { url, reason: 'changes' });
  const actions: UpstreamAction[] = [];
  const refusedKeys: string[] = [];
  for (const action of parsed.data.actions) {
    if (action.type === 'resync') {
      actions.push({ type: 'resync' });
      continue;
    }
    if ((action.type !== 'update' && action.type !== 'delete') || !isPackageKey(action.package)) {
      refusedKeys.push(action.package.slice(0, 200));
      continue;
    }
    actions.push({ type: action.type, key: action.package, timeS: action.time ?? 0 });
  }
  return { actions, timestamp: parsed.data.timestamp, refusedKeys };
}

/** The change feed's first answer (400 without `since`) names the cursor to start from. */
export function parseStartTimestamp(bytes: Buffer, url: string): number {
  const document = parseJson(bytes, url, 'changes') as { timestamp?: unknown } | null;
  const timestamp = document?.timestamp;
  if (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || timestamp <= 0) {
    throw invalid(`${url} without "since" answered no start "timestamp"`, { url, reason: 'changes' });
  }
  return timestamp;
}

export function p2PathOfKey(key: string): string {
  return key.endsWith('~dev') ? p2PathFor(key.slice(0, -4), true) : p2PathFor(key, false);
}

/**
 * A p2 file is kept byte for byte as served, once it is JSON whose `packages`
 * holds exactly the package its path names (an empty version list is allowed:
 * Packagist serves `~dev` files of packages without branches that way).
 */
export function checkUpstreamP2(key: string, bytes: Buffer, url: string): void {
  const name = key.endsWith('~dev') ? key.slice(0, -4) : key;
  const document = parseJson(bytes, url, 'p2-json') as { packages?: unknown } | null;
  const packages = document?.packages;
  if (typeof packages !== 'object' || packages === null || Array.isArray(packages)) {
    throw invalid(`${url} has no "packages" object`, { url, path: p2PathOfKey(key), reason: 'p2-shape' });
  }
  const names = Object.keys(packages);
  if (names.length !== 1 || names[0] !== name || !Array.isArray((packages as Record<string, unknown>)[name])) {
    throw invalid(`${url} must hold exactly the package ${name}, found ${JSON.stringify(names.slice(0, 5))}`, {
      url,
      path: p2PathOfKey(key),
      reason: 'p2-package',
    });
  }
}
