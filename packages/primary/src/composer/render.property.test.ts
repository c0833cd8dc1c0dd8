import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateVersion } from '../publish/api-validation.js';
import type { JsonValue, VersionData } from './minify.js';
import { completeVersion, MINIFIED_FORMAT, parseP2File, renderPackage } from './render.js';
import { isDevVersion, normalizeVersion } from './version.js';

/**
 * Composer metadata rendering over generated valid version lists (the publish
 * API's validator decides what "valid" means): each p2 file holds only its own
 * package in the composer/2.0 minified format, tagged and dev versions land in
 * the right file, and reading a file back gives exactly the versions rendered.
 * A sample is then read by Composer's own code (Debian's composer package:
 * MetadataMinifier::expand, ArrayLoader, VersionParser), as a client would.
 */
const NAME = 'acme/prop-test';

const number = fc.integer({ min: 0, max: 30 });
const classical = fc
  .tuple(
    fc.boolean(),
    fc.array(number, { minLength: 1, maxLength: 4 }),
    fc.option(
      fc.tuple(
        fc.constantFrom('-beta', '-alpha', '-RC', '-patch', 'beta', '-b', '.RC'),
        fc.option(fc.integer({ min: 1, max: 9 }), { nil: undefined }),
      ),
      { nil: undefined },
    ),
  )
  .map(([v, parts, modifier]) => `${v ? 'v' : ''}${parts.join('.')}${modifier === undefined ? '' : `${modifier[0]}${modifier[1] ?? ''}`}`);
const devBranch = fc.oneof(
  fc.stringMatching(/^[a-z][a-z0-9/_.-]{0,12}$/).map((branch) => `dev-${branch}`),
  fc
    .tuple(number, fc.option(number, { nil: undefined }))
    .map(([major, minor]) => `${major}${minor === undefined ? '' : `.${minor}`}.x-dev`),
  fc.constantFrom('dev-main', 'dev-master', '1.0.0-dev'),
);
const versionString = fc
  .oneof({ weight: 3, arbitrary: classical }, { weight: 1, arbitrary: devBranch })
  .filter((v) => normalizeVersion(v) !== undefined);

// Values PHP decodes back to the same shape: no empty objects (PHP makes them []), no integer-like keys.
const key = fc.stringMatching(/^[a-z][a-z-]{0,8}$/);
const leaf: fc.Arbitrary<JsonValue> = fc.oneof(fc.string({ maxLength: 12 }), fc.integer({ min: -1000, max: 1000 }), fc.boolean());
const nested: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    leaf,
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(key, tie('value'), { minKeys: 1, maxKeys: 3 }),
  ),
})).value;

// Built once: arbitraries with stringMatching are costly to construct, so never inside a chain.
const extraFields = fc.record(
  {
    description: fc.string({ maxLength: 40 }),
    license: fc.array(fc.constantFrom('MIT', 'BSD-3-Clause', 'GPL-2.0-or-later'), { minLength: 1, maxLength: 2 }),
    require: fc.dictionary(fc.stringMatching(/^[a-z]{1,6}\/[a-z]{1,6}$/), fc.constantFrom('^1.0', '*', '>=2 <3', 'dev-main'), {
      minKeys: 1,
      maxKeys: 3,
    }),
    type: fc.constantFrom('library', 'composer-plugin', 'project'),
    extra: fc.dictionary(key, nested, { minKeys: 1, maxKeys: 3 }),
    time: fc.constantFrom('2024-01-02T03:04:05+00:00', '2025-12-31T23:59:59+00:00'),
    source: fc.record({
      type: fc.constant('git'),
      url: fc.constant('https://example.org/repo.git'),
      reference: fc.stringMatching(/^[0-9a-f]{40}$/),
    }),
  },
  { requiredKeys: [] },
);
const versionData = (version: string, extra: Record<string, JsonValue>): VersionData => ({
  version,
  ...extra,
  dist: { type: 'zip', url: `https://example.org/${encodeURIComponent(version)}.zip`, reference: 'abc' },
});

/** 1-12 versions with distinct normalized forms, each passing the publish API's validation. */
const versionList: fc.Arbitrary<VersionData[]> = fc
  .uniqueArray(versionString, { minLength: 1, maxLength: 12, selector: (v) => normalizeVersion(v) })
  .chain((versions) =>
    fc
      .array(extraFields, { minLength: versions.length, maxLength: versions.length })
      .map((extras) => versions.map((v, i) => versionData(v, extras[i]!))),
  )
  .map((list) => list.map((v, i) => validateVersion(NAME, v, `versions[${i}]`)));

interface P2Document {
  packages: Record<string, VersionData[]>;
  minified: string;
}

function byVersion(versions: readonly VersionData[]): Map<string, VersionData> {
  return new Map(versions.map((v) => [String(v.version), v]));
}

describe('Composer metadata rendering (property)', () => {
  it('splits versions into tagged and dev files that hold only their package and read back to exactly what was rendered', () => {
    fc.assert(
      fc.property(versionList, (versions) => {
        const rendered = renderPackage(NAME, versions);
        const expectedTagged = versions.filter((v) => !isDevVersion(String(v.version)));
        const expectedDev = versions.filter((v) => isDevVersion(String(v.version)));
        for (const [bytes, expected, path] of [
          [rendered.tagged, expectedTagged, `p2/${NAME}.json`],
          [rendered.dev, expectedDev, `p2/${NAME}~dev.json`],
        ] as const) {
          if (expected.length === 0) {
            expect(bytes, `${path} should be absent`).toBeUndefined();
            continue;
          }
          expect(bytes).toBeDefined();
          const document = JSON.parse(bytes!.toString('utf8')) as P2Document;
          expect(Object.keys(document)).toEqual(['packages', 'minified']);
          expect(document.minified).toBe(MINIFIED_FORMAT);
          expect(Object.keys(document.packages)).toEqual([NAME]);
          const readBack = parseP2File(NAME, bytes!, path);
          expect(readBack).toHaveLength(expected.length);
          const wanted = byVersion(expected.map((v) => completeVersion(NAME, v)));
          for (const version of readBack) {
            expect(version.name).toBe(NAME);
            expect(version.version_normalized).toBe(normalizeVersion(String(version.version)));
            expect(version).toEqual(wanted.get(String(version.version)));
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('is read by Composer itself (MetadataMinifier::expand, ArrayLoader, VersionParser) as the versions rendered, in the right file', () => {
    const samples = fc.sample(versionList, { numRuns: 120, seed: 4242 });
    const cases = samples.flatMap((versions) => {
      const rendered = renderPackage(NAME, versions);
      return [
        ...(rendered.tagged === undefined ? [] : [{ file: 'tagged' as const, bytes: rendered.tagged.toString('utf8'), versions }]),
        ...(rendered.dev === undefined ? [] : [{ file: 'dev' as const, bytes: rendered.dev.toString('utf8'), versions }]),
      ];
    });
    const php = runComposerReader(cases.map((c) => ({ name: NAME, bytes: c.bytes })));
    expect(php).toHaveLength(cases.length);
    cases.forEach((testCase, i) => {
      const composer = php[i]!;
      const where = `case ${i} (${testCase.file}): ${testCase.bytes.slice(0, 300)}`;
      expect(composer.keys, where).toEqual([NAME]);
      // Composer's expansion equals ours, version by version.
      expect(composer.expanded, where).toEqual(parseP2File(NAME, Buffer.from(testCase.bytes)));
      for (const loaded of composer.loaded) {
        expect(loaded.name, where).toBe(NAME);
        // Tagged file: no dev version; ~dev file: only dev versions (Composer's own isDev()).
        expect(loaded.dev, `${where}: ${loaded.pretty}`).toBe(testCase.file === 'dev');
        // The version_normalized we wrote is what Composer's parser makes of the version.
        expect(loaded.normalized, where).toBe(loaded.parsed);
      }
      if (testCase.file === 'tagged') expect(composer.newestFirst, where).toBe(true);
    });
  });
});

interface ComposerRead {
  keys: string[];
  expanded: VersionData[];
  loaded: Array<{ name: string; pretty: string; normalized: string; parsed: string | null; dev: boolean }>;
  newestFirst: boolean;
}

const PHP_READER = `
require '/usr/share/php/Composer/autoload.php';
$in = json_decode(stream_get_contents(STDIN), true);
$loader = new Composer\\Package\\Loader\\ArrayLoader();
$parser = new Composer\\Semver\\VersionParser();
$out = [];
foreach ($in as $case) {
  $doc = json_decode($case['bytes'], true);
  $versions = Composer\\MetadataMinifier\\MetadataMinifier::expand($doc['packages'][$case['name']]);
  $loaded = [];
  $newestFirst = true;
  $previous = null;
  foreach ($versions as $v) {
    $package = $loader->load($v);
    try { $parsed = $parser->normalize($v['version']); } catch (\\Throwable $e) { $parsed = null; }
    $loaded[] = ['name' => $package->getName(), 'pretty' => $package->getPrettyVersion(), 'normalized' => $package->getVersion(), 'parsed' => $parsed, 'dev' => $package->isDev()];
    if ($previous !== null && version_compare($previous, $package->getVersion(), '<')) $newestFirst = false;
    $previous = $package->getVersion();
  }
  $out[] = ['keys' => array_keys($doc['packages']), 'expanded' => $versions, 'loaded' => $loaded, 'newestFirst' => $newestFirst];
}
echo json_encode($out, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION);
`;

function runComposerReader(input: Array<{ name: string; bytes: string }>): ComposerRead[] {
  const stdout = execFileSync('php', ['-d', 'error_reporting=0', '-r', PHP_READER], {
    input: JSON.stringify(input),
    encoding: 'utf8',
    timeout: 20_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(stdout) as ComposerRead[];
}
