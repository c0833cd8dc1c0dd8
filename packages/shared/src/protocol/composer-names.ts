/**
 * Composer's package-name rule (composer/composer ValidatingArrayLoader), lower case only.
 */
export const COMPOSER_PACKAGE_NAME = /^[a-z0-9]([_.-]?[a-z0-9]+)*\/[a-z0-9](([_.]|-{1,2})?[a-z0-9]+)*$/;

export function isComposerPackageName(name: string): boolean {
  return name.length <= 200 && COMPOSER_PACKAGE_NAME.test(name);
}

/** `p2/acme/foo.json` -> `acme/foo`, `p2/acme/foo~dev.json` -> `acme/foo~dev`; undefined for other paths. */
export function packageKeyFromP2Path(path: string): string | undefined {
  const match = /^p2\/([^/]+\/[^/]+?)(~dev)?\.json$/.exec(path);
  if (match === null || match[1] === undefined) return undefined;
  if (!isComposerPackageName(match[1])) return undefined;
  return match[1] + (match[2] ?? '');
}

export function p2PathFor(name: string, dev: boolean): string {
  return `p2/${name}${dev ? '~dev' : ''}.json`;
}
