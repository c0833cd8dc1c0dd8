/**
 * Composer's version rules, ported from composer/semver's VersionParser
 * (`normalize`, `normalizeBranch`, `parseStability`) and PHP's `version_compare`,
 * so the primary sorts and splits versions exactly as Packagist does and accepts
 * only version strings a Composer client can load.
 */

export type Stability = 'stable' | 'RC' | 'beta' | 'alpha' | 'dev';

// Composer's modifier: stability word, optional number(s), optional trailing dev.
const MODIFIER = '[._-]?(?:(stable|beta|b|RC|alpha|a|patch|pl|p)((?:[.-]?\\d+)*)?)?([.-]?dev)?';
const CLASSICAL = new RegExp(`^v?(\\d{1,5})(\\.\\d+)?(\\.\\d+)?(\\.\\d+)?${MODIFIER}$`, 'i');
const DATE_BASED = new RegExp(`^v?(\\d{4}(?:[.:-]?\\d{2}){1,6}(?:[.:-]?\\d{1,3})?)${MODIFIER}$`, 'i');
const STABILITY_SUFFIX = new RegExp(`${MODIFIER}(?:\\+.*)?$`, 'i');
const BRANCH_NUMERIC = /^v?(\d+)(\.(?:\d+|[xX*]))?(\.(?:\d+|[xX*]))?(\.(?:\d+|[xX*]))?$/i;

/** Longest version string accepted; Packagist's longest real ones are far shorter. */
export const MAX_VERSION_LENGTH = 255;

/** Composer's stability of a version string (`dev-main` and `1.x-dev` are `dev`). */
export function parseStability(version: string): Stability {
  const bare = version.replace(/#.+$/, '');
  if (bare.startsWith('dev-') || bare.endsWith('-dev')) return 'dev';
  const match = STABILITY_SUFFIX.exec(bare.toLowerCase());
  if (match?.[3]) return 'dev';
  const word = match?.[1];
  if (word === 'beta' || word === 'b') return 'beta';
  if (word === 'alpha' || word === 'a') return 'alpha';
  if (word === 'rc') return 'RC';
  return 'stable';
}

/** True for versions Packagist lists in `p2/<name>~dev.json` rather than `p2/<name>.json`. */
export function isDevVersion(version: string): boolean {
  return parseStability(version) === 'dev';
}

function expandStability(word: string): string {
  const lower = word.toLowerCase();
  if (lower === 'a') return 'alpha';
  if (lower === 'b') return 'beta';
  if (lower === 'p' || lower === 'pl') return 'patch';
  if (lower === 'rc') return 'RC';
  return lower;
}

/**
 * Composer's `VersionParser::normalize` for a package version (no constraints):
 * `v1.2` -> `1.2.0.0`, `2.0-beta1` -> `2.0.0.0-beta1`, `1.x-dev` -> `1.9999999.9999999.9999999-dev`,
 * `dev-main` -> `dev-main`. Returns undefined where Composer would throw.
 */
export function normalizeVersion(input: string): string | undefined {
  let version = input.trim();
  if (version === '' || version.length > MAX_VERSION_LENGTH) return undefined;
  const alias = /^([^,\s]+) +as +([^,\s]+)$/.exec(version);
  if (alias?.[1] !== undefined) version = alias[1];
  const flag = /@(?:stable|RC|beta|alpha|dev)$/i.exec(version);
  if (flag !== null) version = version.slice(0, version.length - flag[0].length);
  if (version === 'master' || version === 'trunk' || version === 'default') version = `dev-${version}`;
  if (version.slice(0, 4).toLowerCase() === 'dev-') return `dev-${version.slice(4)}`;
  const build = /^([^,\s+]+)\+[^\s]+$/.exec(version);
  if (build?.[1] !== undefined) version = build[1];

  let matches = CLASSICAL.exec(version);
  let index: number;
  let base: string;
  if (matches !== null) {
    base = `${matches[1]}${matches[2] || '.0'}${matches[3] || '.0'}${matches[4] || '.0'}`;
    index = 5;
  } else {
    matches = DATE_BASED.exec(version);
    if (matches === null) return normalizeDevSuffixed(version);
    base = (matches[1] ?? '').replace(/\D/g, '.');
    index = 2;
  }
  const word = matches[index];
  if (word) {
    if (word === 'stable') return base;
    base += `-${expandStability(word)}${(matches[index + 1] ?? '').replace(/^[.-]+/, '')}`;
  }
  if (matches[index + 2]) base += '-dev';
  return base;
}

/** `1.x-dev`, `2.1.x-dev`: numeric branches; anything else ending in dev is not a version. */
function normalizeDevSuffixed(version: string): string | undefined {
  const match = /^(.*?)[.-]?dev$/i.exec(version);
  if (match?.[1] === undefined) return undefined;
  const normalized = normalizeBranch(match[1]);
  return normalized.includes('dev-') ? undefined : normalized;
}

/** Composer's `normalizeBranch`: `2.x` -> `2.9999999.9999999.9999999-dev`, `feature` -> `dev-feature`. */
export function normalizeBranch(name: string): string {
  const trimmed = name.trim();
  const match = BRANCH_NUMERIC.exec(trimmed);
  if (match === null) return `dev-${trimmed}`;
  let version = '';
  for (let i = 1; i < 5; i++) version += match[i] === undefined ? '.x' : match[i]!.replace(/[*X]/g, 'x');
  return `${version.replace(/x/g, '9999999')}-dev`;
}

// PHP's special version forms, in order; a part takes the first form it starts with, else -1.
const SPECIAL_FORMS: ReadonlyArray<readonly [string, number]> = [
  ['dev', 0],
  ['alpha', 1],
  ['a', 1],
  ['beta', 2],
  ['b', 2],
  ['RC', 3],
  ['rc', 3],
  ['#', 4],
  ['pl', 5],
  ['p', 5],
];
const NUMBER_FORM = '#N#';

function specialOrder(part: string): number {
  for (const [form, order] of SPECIAL_FORMS) if (part.startsWith(form)) return order;
  return -1;
}

function isDigit(char: string | undefined): boolean {
  return char !== undefined && char >= '0' && char <= '9';
}

/** PHP's `php_canonicalize_version`: `-_+` and other symbols become `.`, and `.` splits digit/non-digit runs. */
function canonicalizeVersion(version: string): string {
  let out = version[0] ?? '';
  for (let i = 1; i < version.length; i++) {
    const char = version[i]!;
    const previous = version[i - 1]!;
    const lastOut = out[out.length - 1];
    const digitToOther = (isDigit(previous) && !isDigit(char) && char !== '.') || (!isDigit(previous) && previous !== '.' && isDigit(char));
    if (char === '-' || char === '_' || char === '+') {
      if (lastOut !== '.') out += '.';
    } else if (digitToOther) {
      if (lastOut !== '.') out += '.';
      out += char;
    } else if (!/[A-Za-z0-9]/.test(char)) {
      if (lastOut !== '.') out += '.';
    } else {
      out += char;
    }
  }
  return out;
}

function comparePart(left: string, right: string): number {
  const leftDigit = isDigit(left[0]);
  const rightDigit = isDigit(right[0]);
  if (leftDigit && rightDigit) return Math.sign(Number.parseInt(left, 10) - Number.parseInt(right, 10));
  if (!leftDigit && !rightDigit) return Math.sign(specialOrder(left) - specialOrder(right));
  return leftDigit ? Math.sign(specialOrder(NUMBER_FORM) - specialOrder(right)) : Math.sign(specialOrder(left) - specialOrder(NUMBER_FORM));
}

/**
 * PHP's `version_compare($a, $b)`: -1, 0 or 1. Mirrors php_version_compare
 * step by step, including its stop at an empty part and its recursive
 * comparison of a leftover tail against a number.
 */
export function phpVersionCompare(a: string, b: string): number {
  if (a === '' || b === '') return a === b ? 0 : a === '' ? -1 : 1;
  return compareCanonicalParts(canonicalParts(a), canonicalParts(b));
}

/** The parts PHP compares, for callers that compare one version many times (sorting). */
export function canonicalParts(version: string): string[] {
  return (version.startsWith('#') ? version : canonicalizeVersion(version)).split('.');
}

function compareCanonicalParts(left: readonly string[], right: readonly string[]): number {
  let i = 0;
  let j = 0;
  let leftHasNext = true;
  let rightHasNext = true;
  let compare = 0;
  // C checks the first character of the remaining string, so only an empty tail stops here.
  const restEmpty = (parts: readonly string[], k: number): boolean => k === parts.length - 1 && parts[k] === '';
  while (!restEmpty(left, i) && !restEmpty(right, j) && leftHasNext && rightHasNext) {
    leftHasNext = i < left.length - 1;
    rightHasNext = j < right.length - 1;
    compare = comparePart(left[i]!, right[j]!);
    if (compare !== 0) break;
    if (leftHasNext) i++;
    if (rightHasNext) j++;
  }
  if (compare !== 0) return compare;
  if (leftHasNext) {
    const rest = left.slice(i).join('.');
    return isDigit(rest[0]) ? 1 : phpVersionCompare(rest, NUMBER_FORM);
  }
  if (rightHasNext) {
    const rest = right.slice(j).join('.');
    return isDigit(rest[0]) ? -1 : phpVersionCompare(NUMBER_FORM, rest);
  }
  return 0;
}

export interface SortableVersion {
  version: string;
  normalized: string;
}

/** Sorts newest first (Packagist's order inside a p2 file), canonicalizing each version once. */
export function sortNewestFirst<T extends SortableVersion>(versions: readonly T[]): T[] {
  const keyed = versions.map((entry) => ({ entry, parts: entry.normalized === '' ? undefined : canonicalParts(entry.normalized) }));
  keyed.sort((a, b) => {
    const byNormalized =
      a.parts === undefined || b.parts === undefined
        ? phpVersionCompare(b.entry.normalized, a.entry.normalized)
        : compareCanonicalParts(b.parts, a.parts);
    if (byNormalized !== 0) return byNormalized;
    return a.entry.version < b.entry.version ? -1 : a.entry.version > b.entry.version ? 1 : 0;
  });
  return keyed.map((item) => item.entry);
}
