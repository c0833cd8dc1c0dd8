/**
 * Renders Composer 2 repository files: `p2/<name>.json` (tagged versions),
 * `p2/<name>~dev.json` (dev branches) and the root `packages.json`.
 * Pure functions: bytes in, bytes out; no I/O, no clock.
 */
import { metasyncError, p2PathFor } from '@metasync/shared';
import { expandVersions, minifyVersions, type VersionData } from './minify.js';
import { isDevVersion, normalizeVersion, sortNewestFirst } from './version.js';

export const MINIFIED_FORMAT = 'composer/2.0';
/** Root `metadata-url`: relative, so a mirror serves the file under its own host name. */
export const METADATA_URL = '/p2/%package%.json';
/** Above this many names `available-packages` is left out (Composer then asks per package). */
export const MAX_AVAILABLE_PACKAGES = 10_000;

export interface RenderedPackage {
  /** `p2/<name>.json` bytes, or undefined when the package has no tagged version. */
  tagged: Buffer | undefined;
  /** `p2/<name>~dev.json` bytes, or undefined when it has no dev version. */
  dev: Buffer | undefined;
}

/** `name` first and `version_normalized` computed by Composer's rules, the rest as given. */
export function completeVersion(name: string, version: VersionData): VersionData {
  const pretty = version.version;
  if (typeof pretty !== 'string') throw new TypeError(`version of ${name} has no string "version"`);
  const normalized = normalizeVersion(pretty);
  if (normalized === undefined) throw new TypeError(`version ${JSON.stringify(pretty)} of ${name} is not Composer-normalizable`);
  const complete: VersionData = { name };
  for (const key of Object.keys(version)) {
    if (key === 'name' || key === 'version_normalized') continue;
    complete[key] = version[key]!;
    if (key === 'version') complete.version_normalized = normalized;
  }
  return complete;
}

function sortVersions(versions: readonly VersionData[]): VersionData[] {
  return sortNewestFirst(
    versions.map((data) => ({ data, version: String(data.version), normalized: String(data.version_normalized) })),
  ).map((entry) => entry.data);
}

function renderP2(name: string, versions: readonly VersionData[]): Buffer {
  return Buffer.from(JSON.stringify({ packages: { [name]: minifyVersions(sortVersions(versions)) }, minified: MINIFIED_FORMAT }));
}

/** Splits a package's versions into its tagged and dev files, each sorted newest first and minified. */
export function renderPackage(name: string, versions: readonly VersionData[]): RenderedPackage {
  const tagged: VersionData[] = [];
  const dev: VersionData[] = [];
  for (const version of versions) {
    const complete = completeVersion(name, version);
    (isDevVersion(String(complete.version)) ? dev : tagged).push(complete);
  }
  return {
    tagged: tagged.length === 0 ? undefined : renderP2(name, tagged),
    dev: dev.length === 0 ? undefined : renderP2(name, dev),
  };
}

/** The p2 paths of a package with the bytes each should hold (undefined = absent). */
export function packageFileChanges(name: string, rendered: RenderedPackage): Array<{ path: string; content: Buffer | undefined }> {
  return [
    { path: p2PathFor(name, false), content: rendered.tagged },
    { path: p2PathFor(name, true), content: rendered.dev },
  ];
}

/**
 * Reads a p2 file back into complete versions. Refuses a file that is not the
 * minified (or plain) Composer 2 shape or that holds another package than `name`.
 */
export function parseP2File(name: string, bytes: Buffer, path = p2PathFor(name, false)): VersionData[] {
  let document: unknown;
  try {
    document = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw metasyncError(
      'METASYNC_ERR_PACKAGE_INVALID',
      `p2 file ${path} is not valid JSON`,
      { path, field: path, rule: 'composer-p2-file' },
      err,
    );
  }
  const packages = (document as { packages?: unknown } | null)?.packages;
  if (typeof packages !== 'object' || packages === null || Array.isArray(packages)) {
    throw metasyncError('METASYNC_ERR_PACKAGE_INVALID', `p2 file ${path} has no "packages" object`, {
      path,
      field: path,
      rule: 'composer-p2-file',
    });
  }
  const names = Object.keys(packages);
  const list = (packages as Record<string, unknown>)[name];
  if (names.length !== 1 || !Array.isArray(list) || !list.every((v) => typeof v === 'object' && v !== null && !Array.isArray(v))) {
    throw metasyncError(
      'METASYNC_ERR_PACKAGE_INVALID',
      `p2 file ${path} must hold exactly the package ${name}, found ${JSON.stringify(names.slice(0, 5))}`,
      {
        path,
        field: path,
        rule: 'own-package-only',
      },
    );
  }
  const versions = list as VersionData[];
  return (document as { minified?: unknown }).minified === MINIFIED_FORMAT ? expandVersions(versions) : versions;
}

export interface RootOptions {
  /** Every package name in the repository, or undefined when there are too many to list. */
  availablePackages: readonly string[] | undefined;
  /** `metadata-changes-url`, relative like `metadata-url` (the primary's own Packagist-compatible feed); omitted when undefined. */
  metadataChangesUrl?: string | undefined;
}

/**
 * The root `packages.json`. `packages: []` with a metadata-url tells Composer 2
 * to fetch `p2/` files only; `available-packages` lets it skip 404 round trips
 * for names the repository does not have. No host names: every URL is relative.
 */
export function renderRootPackagesJson(options: RootOptions): Buffer {
  const root: Record<string, unknown> = {
    packages: [],
    'metadata-url': METADATA_URL,
  };
  if (options.metadataChangesUrl !== undefined) root['metadata-changes-url'] = options.metadataChangesUrl;
  const names = options.availablePackages;
  if (names !== undefined && names.length <= MAX_AVAILABLE_PACKAGES) root['available-packages'] = [...names].sort();
  return Buffer.from(JSON.stringify(root));
}
