import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expandVersions, minifyVersions, UNSET_MARKER, type JsonValue, type VersionData } from './minify.js';
import { runComposerPhpOracle as runPhpOracle } from '../../../../test/helpers/composer-client.js';

// Keys that PHP and JS order alike (no integer-like keys) and non-empty objects
// (PHP would turn `{}` into `[]`), so the PHP oracle can compare byte for byte.
const key = fc.stringMatching(/^[a-z][a-z-]{0,6}$/);
const leaf: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.integer({ min: -5, max: 5 }),
  fc.boolean(),
  fc.constant(null),
);
const nested: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(key, tie('value'), { minKeys: 1, maxKeys: 3 }),
  ),
})).value;
// Top-level values: never null and never the marker (the publish API refuses both).
const topValue = nested.filter((v) => v !== null && v !== UNSET_MARKER);
// Versions drawn from a small key pool so neighbours share, change and drop keys.
const version: fc.Arbitrary<VersionData> = fc.dictionary(
  fc.constantFrom('name', 'version', 'license', 'require', 'dist', 'extra', 'time'),
  topValue,
  { minKeys: 1, maxKeys: 7 },
);
const versionList = fc.array(version, { minLength: 1, maxLength: 6 });

describe('composer/2.0 minified format', () => {
  it('expands what it minified back to the same versions', () => {
    fc.assert(
      fc.property(versionList, (versions) => {
        expect(expandVersions(minifyVersions(versions))).toEqual(versions);
      }),
      { numRuns: 500, seed: 20261122 },
    );
  });

  it('writes the first version whole, then only changed keys and __unset', () => {
    const minified = minifyVersions([
      { name: 'foo/bar', version: '2.0.0', scripts: { foo: ['bar'] }, license: ['MIT'] },
      { name: 'foo/bar', version: '1.2.0', license: ['GPL'], homepage: 'https://example.org' },
      { name: 'foo/bar', version: '1.0.0', license: ['GPL'] },
    ]);
    expect(minified).toEqual([
      { name: 'foo/bar', version: '2.0.0', scripts: { foo: ['bar'] }, license: ['MIT'] },
      { version: '1.2.0', license: ['GPL'], homepage: 'https://example.org', scripts: '__unset' },
      { version: '1.0.0', homepage: '__unset' },
    ]);
  });

  it('produces the same bytes as Composer MetadataMinifier::minify', () => {
    const samples = fc.sample(versionList, { numRuns: 300, seed: 5 });
    const oracle = runPhpOracle({ normalize: [], compare: [], minify: samples });
    samples.forEach((versions, i) => {
      expect(JSON.stringify(minifyVersions(versions))).toBe(JSON.stringify(oracle.minify[i]));
    });
  });
});
