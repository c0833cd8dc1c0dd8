/**
 * Composer 2's `"minified": "composer/2.0"` encoding (composer/metadata-minifier):
 * the first version is complete; every later one carries only the keys whose
 * value differs from the version before it, and `"__unset"` for keys it lacks.
 *
 *   [ {name, version: "2.0", license: ["MIT"], scripts: {...}},
 *     {version: "1.2", license: ["GPL"], scripts: "__unset"},   <- diff against 2.0
 *     {version: "1.0"} ]                                         <- diff against 1.2
 *
 * PHP compares with `isset()`, so a key whose value is null counts as absent;
 * the publish API refuses top-level nulls and the literal "__unset" so that
 * `expand(minify(v))` always returns `v`.
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type VersionData = Record<string, JsonValue>;

export const UNSET_MARKER = '__unset';

function isSet(data: VersionData, key: string): boolean {
  return Object.hasOwn(data, key) && data[key] !== null;
}

/** PHP's `!==` on decoded JSON: same types, same values, same key order. */
export function jsonIdentical(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined) return false;
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => jsonIdentical(item, b[i]));
  }
  const aKeys = Object.keys(a);
  const bKeys = Object.keys(b);
  if (aKeys.length !== bKeys.length) return false;
  return aKeys.every((key, i) => key === bKeys[i] && jsonIdentical(a[key], b[key]));
}

/** MetadataMinifier::minify: versions in file order (newest first) -> diffs. */
export function minifyVersions(versions: readonly VersionData[]): VersionData[] {
  const minified: VersionData[] = [];
  // A Map, not an object: `delete` would push an object into slow dictionary mode.
  let last: Map<string, JsonValue> | undefined;
  for (const version of versions) {
    if (last === undefined) {
      last = new Map(Object.entries(version));
      minified.push(version);
      continue;
    }
    const diff: VersionData = {};
    const keys = Object.keys(version);
    for (const key of keys) {
      const value = version[key]!;
      const previous = last.get(key);
      if (previous === undefined || previous === null || !jsonIdentical(previous, value)) {
        diff[key] = value;
        last.set(key, value);
      }
    }
    for (const key of last.keys()) {
      if (!isSet(version, key)) {
        diff[key] = UNSET_MARKER;
        last.delete(key);
      }
    }
    minified.push(diff);
  }
  return minified;
}

/** MetadataMinifier::expand: diffs -> complete versions. */
export function expandVersions(minified: readonly VersionData[]): VersionData[] {
  const expanded: VersionData[] = [];
  let current: VersionData | undefined;
  for (const entry of minified) {
    if (current === undefined) {
      current = { ...entry };
      expanded.push(entry);
      continue;
    }
    current = { ...current };
    for (const [key, value] of Object.entries(entry)) {
      if (value === UNSET_MARKER) delete current[key];
      else current[key] = value;
    }
    expanded.push(current);
  }
  return expanded;
}
