/**
 * Validation of publish API input. Every rejection is a MetasyncError whose
 * details name the offending `field` (a JSON path such as `versions[2].dist.url`)
 * and the `rule` it broke, so callers can fix the exact spot.
 */
import { isComposerPackageName, metasyncError, type MetasyncError } from '@metasync/shared';
import { UNSET_MARKER, type JsonValue, type VersionData } from '../composer/minify.js';
import { MAX_VERSION_LENGTH, normalizeVersion } from '../composer/version.js';

export interface ApiLimits {
  /** Most versions one package may hold (Packagist's largest have a few thousand). */
  maxVersionsPerPackage: number;
  /** Longest string anywhere in a version object, in characters. */
  maxStringLength: number;
  /** Deepest nesting of arrays/objects inside a version object. */
  maxDepth: number;
}

export const DEFAULT_API_LIMITS: ApiLimits = { maxVersionsPerPackage: 5000, maxStringLength: 65_536, maxDepth: 32 };

const LINK_FIELDS = ['require', 'require-dev', 'conflict', 'provide', 'replace', 'suggest'] as const;
const STRING_FIELDS = ['type', 'description', 'time', 'homepage', 'target-dir', 'notification-url'] as const;

function invalid(field: string, rule: string, message: string): MetasyncError {
  return metasyncError('METASYNC_ERR_PACKAGE_INVALID', `${field}: ${message}`, { field, rule });
}

function requestInvalid(field: string, rule: string, message: string): MetasyncError {
  return metasyncError('METASYNC_ERR_REQUEST_INVALID', `${field}: ${message}`, { field, rule });
}

function isObject(value: unknown): value is Record<string, JsonValue> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `vendor` and `name` from the URL -> the package name, by Composer's naming rule. */
export function validatePackageName(vendor: string, name: string): string {
  const full = `${vendor}/${name}`;
  if (!isComposerPackageName(full)) {
    throw invalid(
      'name',
      'composer-package-name',
      `${JSON.stringify(full.slice(0, 220))} is not a valid Composer package name (lowercase vendor/name of [a-z0-9] joined by . _ -)`,
    );
  }
  return full;
}

/** A version string from a URL (`DELETE .../versions/{version}`). */
export function validateVersionString(version: string, field = 'version'): string {
  if (version.length > MAX_VERSION_LENGTH) throw invalid(field, 'max-length', `longer than ${MAX_VERSION_LENGTH} characters`);
  if (normalizeVersion(version) === undefined)
    throw invalid(field, 'composer-version', `${JSON.stringify(version)} is not a version Composer can normalize`);
  return version;
}

function checkSizes(value: JsonValue, field: string, limits: ApiLimits, depth: number): void {
  if (typeof value === 'string') {
    if (value.length > limits.maxStringLength)
      throw invalid(field, 'max-length', `string longer than ${limits.maxStringLength} characters`);
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  if (depth > limits.maxDepth) throw invalid(field, 'max-depth', `nested deeper than ${limits.maxDepth} levels`);
  if (Array.isArray(value)) {
    value.forEach((item, i) => checkSizes(item, `${field}[${i}]`, limits, depth + 1));
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    if (key.length > limits.maxStringLength) throw invalid(field, 'max-length', `key longer than ${limits.maxStringLength} characters`);
    checkSizes(item, `${field}.${key}`, limits, depth + 1);
  }
}

function checkSourceOrDist(version: Record<string, JsonValue>, kind: 'source' | 'dist', field: string): boolean {
  const location = version[kind];
  if (location === undefined) return false;
  if (!isObject(location)) throw invalid(`${field}.${kind}`, 'object', 'must be an object with type, url and reference');
  for (const key of ['type', 'url'] as const) {
    const value = location[key];
    if (typeof value !== 'string' || value === '') throw invalid(`${field}.${kind}.${key}`, 'required', 'must be a non-empty string');
  }
  const reference = location.reference;
  if (kind === 'source' && (typeof reference !== 'string' || reference === '')) {
    throw invalid(`${field}.source.reference`, 'required', 'must be a non-empty string');
  }
  if (reference !== undefined && reference !== null && typeof reference !== 'string')
    throw invalid(`${field}.${kind}.reference`, 'type', 'must be a string');
  if (location.shasum !== undefined && location.shasum !== null && typeof location.shasum !== 'string')
    throw invalid(`${field}.${kind}.shasum`, 'type', 'must be a string');
  return true;
}

/**
 * One version object as Composer's ValidatingArrayLoader would accept it, plus
 * what the minified format needs (no top-level null or "__unset" values).
 * Returns the object unchanged when valid.
 */
export function validateVersion(packageName: string, raw: unknown, field: string, limits: ApiLimits = DEFAULT_API_LIMITS): VersionData {
  if (!isObject(raw)) throw invalid(field, 'object', 'must be a Composer version object');
  checkSizes(raw, field, limits, 1);
  for (const [key, value] of Object.entries(raw)) {
    if (value === null) throw invalid(`${field}.${key}`, 'not-null', 'top-level values must not be null (leave the key out)');
    if (value === UNSET_MARKER) throw invalid(`${field}.${key}`, 'reserved-value', `"${UNSET_MARKER}" is reserved by the minified format`);
  }
  if (raw.name !== undefined && raw.name !== packageName) {
    throw invalid(`${field}.name`, 'matches-url', `is ${JSON.stringify(raw.name)} but the URL names ${packageName}`);
  }
  if (typeof raw.version !== 'string') throw invalid(`${field}.version`, 'required', 'must be a string');
  validateVersionString(raw.version, `${field}.version`);
  const hasSource = checkSourceOrDist(raw, 'source', field);
  const hasDist = checkSourceOrDist(raw, 'dist', field);
  if (!hasSource && !hasDist) throw invalid(field, 'dist-or-source', 'needs a dist or a source (type, url, reference)');
  for (const link of LINK_FIELDS) {
    const value = raw[link];
    if (value === undefined) continue;
    if (!isObject(value) || !Object.values(value).every((constraint) => typeof constraint === 'string')) {
      throw invalid(`${field}.${link}`, 'links', 'must map package names to constraint strings');
    }
  }
  for (const key of STRING_FIELDS) {
    if (raw[key] !== undefined && typeof raw[key] !== 'string') throw invalid(`${field}.${key}`, 'type', 'must be a string');
  }
  const license = raw.license;
  if (license !== undefined && typeof license !== 'string' && !(Array.isArray(license) && license.every((l) => typeof l === 'string'))) {
    throw invalid(`${field}.license`, 'type', 'must be a string or a list of strings');
  }
  return raw;
}

/** Body of `PUT /api/v1/packages/{vendor}/{name}`: `{ versions: [...] }`, distinct versions. */
export function validateVersionList(packageName: string, body: unknown, limits: ApiLimits = DEFAULT_API_LIMITS): VersionData[] {
  if (!isObject(body)) throw requestInvalid('body', 'object', 'must be a JSON object {"versions": [...]}');
  const versions = body.versions;
  if (!Array.isArray(versions)) throw requestInvalid('versions', 'required', 'must be an array of version objects');
  if (versions.length === 0) throw invalid('versions', 'min-items', 'must hold at least one version (DELETE the package to remove it)');
  if (versions.length > limits.maxVersionsPerPackage)
    throw invalid('versions', 'max-items', `holds ${versions.length} versions, more than ${limits.maxVersionsPerPackage}`);
  const seen = new Set<string>();
  return versions.map((raw, i) => {
    const version = validateVersion(packageName, raw, `versions[${i}]`, limits);
    const normalized = normalizeVersion(version.version as string)!;
    if (seen.has(normalized))
      throw invalid(
        `versions[${i}].version`,
        'unique-version',
        `${JSON.stringify(version.version)} repeats an earlier version (normalized ${normalized})`,
      );
    seen.add(normalized);
    return version;
  });
}
