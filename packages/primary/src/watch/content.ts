/**
 * What the watcher checks in a file's bytes before publishing it: that JSON
 * parses (the completeness rule) and that a p2 file holds its own package.
 */
import { packageKeyFromP2Path } from '@metasync/shared';

export const NOT_JSON = Symbol('not json');

export function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    return NOT_JSON; // expected while a writer is mid-file
  }
}

/** composer/mirror's rule: a p2 file must hold exactly the package its path names. */
export function p2Problem(path: string, document: unknown): string | undefined {
  const key = packageKeyFromP2Path(path);
  if (key === undefined) return undefined;
  const name = key.replace(/~dev$/, '');
  const packages = (document as { packages?: unknown } | null)?.packages;
  if (typeof packages !== 'object' || packages === null || Array.isArray(packages)) return 'p2 file has no "packages" object';
  const names = Object.keys(packages);
  if (names.length !== 1 || names[0] !== name) return `p2 file for ${name} holds ${JSON.stringify(names.slice(0, 3))}`;
  return undefined;
}
