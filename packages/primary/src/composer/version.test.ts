import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runComposerPhpOracle as runPhpOracle } from '../../../../test/helpers/composer-client.js';
import { isDevVersion, sortNewestFirst, normalizeBranch, normalizeVersion, parseStability, phpVersionCompare } from './version.js';

const SAMPLES = [
  '1.0.0',
  'v1.2',
  '2.0-beta1',
  '2.0.0-RC2',
  '1.0.0-alpha.3',
  '1.0.0-a2',
  '1.0.0-b',
  '1.0.0-pl1',
  '1.0.0-patch2',
  '1.0.0-stable',
  '1.0.x-dev',
  '1.x-dev',
  '2.1.*-dev',
  'dev-main',
  'dev-feature/x',
  'master',
  '1.0.0+build5',
  '20240101',
  '2024.01.01',
  '2024-01-01-10-30',
  '1.0.0-dev',
  '1.0.0.dev',
  '1.0.0-beta.2-dev',
  '1',
  '1.2.3.4',
  'v10.20.30',
  'foo',
  '1.0.0-foo',
  '',
  ' 1.0 ',
  '1.0 as 2.0',
  '1.0@beta',
  '99999999',
  '1.0.0-RC1-dev',
  'dev-master#abc',
];

const versionLike = fc.oneof(
  fc.constantFrom(...SAMPLES),
  fc
    .tuple(
      fc.constantFrom('', 'v'),
      fc.array(fc.integer({ min: 0, max: 120 }), { minLength: 1, maxLength: 4 }),
      fc.constantFrom('', '-alpha', '-beta2', '-RC1', '-rc.3', '-dev', '.x-dev', '-p1', 'b', '-patch'),
    )
    .map(([prefix, parts, suffix]) => `${prefix}${parts.join('.')}${suffix}`),
  fc.stringMatching(/^dev-[a-z0-9/._-]{1,12}$/),
);

describe('Composer version rules', () => {
  it('normalizes like Composer VersionParser for known versions', () => {
    expect(normalizeVersion('v1.2')).toBe('1.2.0.0');
    expect(normalizeVersion('2.0-beta1')).toBe('2.0.0.0-beta1');
    expect(normalizeVersion('1.x-dev')).toBe('1.9999999.9999999.9999999-dev');
    expect(normalizeVersion('dev-main')).toBe('dev-main');
    expect(normalizeVersion('foo')).toBeUndefined();
    expect(normalizeBranch('feature')).toBe('dev-feature');
  });

  it('classifies dev branches the way Packagist splits ~dev files', () => {
    expect(isDevVersion('dev-main')).toBe(true);
    expect(isDevVersion('1.0.x-dev')).toBe(true);
    expect(isDevVersion('1.0.0-RC1')).toBe(false);
    expect(parseStability('1.0.0-beta2')).toBe('beta');
  });

  it('agrees with PHP and Composer on normalize, stability and version_compare', () => {
    const versions = [...SAMPLES, ...fc.sample(versionLike, { numRuns: 400, seed: 42 })];
    const normalizedPairs = fc
      .sample(fc.tuple(versionLike, versionLike), { numRuns: 400, seed: 7 })
      .map(([a, b]): [string, string] => [normalizeVersion(a) ?? a, normalizeVersion(b) ?? b]);
    const rawPairs = fc.sample(fc.tuple(fc.stringMatching(/^[0-9a-zA-Z.+_#-]{1,10}$/), fc.stringMatching(/^[0-9a-zA-Z.+_#-]{1,10}$/)), {
      numRuns: 600,
      seed: 9,
    });
    const pairs = [...normalizedPairs, ...rawPairs];
    const oracle = runPhpOracle({ normalize: versions, compare: pairs, minify: [] });
    versions.forEach((version, i) => {
      expect({ version, normalized: normalizeVersion(version) ?? null }).toEqual({ version, normalized: oracle.normalize[i] });
      expect({ version, stability: parseStability(version) }).toEqual({ version, stability: oracle.stability[i] });
    });
    pairs.forEach(([a, b], i) => {
      expect({ a, b, result: phpVersionCompare(a, b) }).toEqual({ a, b, result: oracle.compare[i] });
    });
  });

  it('sorts newest first with a deterministic tie-break', () => {
    const list = ['1.0.0', '2.0.0-beta1', '2.0.0', '1.10.0', '1.9.0'].map((version) => ({
      version,
      normalized: normalizeVersion(version)!,
    }));
    expect(sortNewestFirst(list).map((v) => v.version)).toEqual(['2.0.0', '2.0.0-beta1', '1.10.0', '1.9.0', '1.0.0']);
    // Tagged versions only: PHP's version_compare is not transitive across arbitrary branch names.
    const sample = fc
      .sample(versionLike, { numRuns: 300, seed: 3 })
      .filter((version) => normalizeVersion(version) !== undefined && !isDevVersion(version))
      .map((version) => ({ version, normalized: normalizeVersion(version)! }));
    const sorted = sortNewestFirst(sample);
    for (let i = 1; i < sorted.length; i++)
      expect(phpVersionCompare(sorted[i - 1]!.normalized, sorted[i]!.normalized)).toBeGreaterThanOrEqual(0);
  });
});
