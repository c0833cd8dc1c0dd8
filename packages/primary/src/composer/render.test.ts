import { describe, expect, it } from 'vitest';
import { MAX_AVAILABLE_PACKAGES, parseP2File, renderPackage, renderRootPackagesJson } from './render.js';

const dist = (v: string) => ({ type: 'zip', url: `https://example.org/acme-foo-${v}.zip`, reference: `ref-${v}` });

describe('Composer repository rendering', () => {
  it('splits tagged and dev versions into p2 files, newest first, minified', () => {
    const rendered = renderPackage('acme/foo', [
      { version: '1.0.0', dist: dist('1.0.0'), require: { php: '>=8.1' } },
      { version: 'dev-main', dist: dist('main') },
      { version: '1.10.0', dist: dist('1.10.0'), require: { php: '>=8.1' } },
      { version: '1.2.0-beta1', dist: dist('1.2.0-beta1') },
      { version: '2.x-dev', dist: dist('2.x') },
    ]);
    const tagged = JSON.parse(rendered.tagged!.toString()) as {
      packages: Record<string, Array<Record<string, unknown>>>;
      minified: string;
    };
    expect(tagged.minified).toBe('composer/2.0');
    expect(Object.keys(tagged.packages)).toEqual(['acme/foo']);
    const first = tagged.packages['acme/foo']![0]!;
    expect(Object.keys(first).slice(0, 3)).toEqual(['name', 'version', 'version_normalized']);
    expect(first).toMatchObject({ name: 'acme/foo', version: '1.10.0', version_normalized: '1.10.0.0' });
    expect(tagged.packages['acme/foo']![1]).toEqual({
      version: '1.2.0-beta1',
      version_normalized: '1.2.0.0-beta1',
      dist: dist('1.2.0-beta1'),
      require: '__unset',
    });
    expect(parseP2File('acme/foo', rendered.tagged!).map((v) => v.version)).toEqual(['1.10.0', '1.2.0-beta1', '1.0.0']);
    expect(
      parseP2File('acme/foo', rendered.dev!)
        .map((v) => v.version)
        .sort(),
    ).toEqual(['2.x-dev', 'dev-main']);
  });

  it('leaves out the file of a kind the package has no version of', () => {
    const rendered = renderPackage('acme/foo', [{ version: 'dev-main', dist: dist('main') }]);
    expect(rendered.tagged).toBeUndefined();
    expect(rendered.dev).toBeDefined();
  });

  it('refuses a p2 file that holds another package', () => {
    const other = renderPackage('acme/other', [{ version: '1.0.0', dist: dist('1') }]).tagged!;
    expect(() => parseP2File('acme/foo', other)).toThrow(expect.objectContaining({ code: 'METASYNC_ERR_PACKAGE_INVALID' }));
  });

  it('renders a root with a relative metadata-url and lists names only while few', () => {
    const root = JSON.parse(renderRootPackagesJson({ availablePackages: ['b/b', 'a/a'] }).toString()) as Record<string, unknown>;
    expect(root).toEqual({ packages: [], 'metadata-url': '/p2/%package%.json', 'available-packages': ['a/a', 'b/b'] });
    const many = Array.from({ length: MAX_AVAILABLE_PACKAGES + 1 }, (_, i) => `v/p${i}`);
    expect(JSON.parse(renderRootPackagesJson({ availablePackages: many }).toString())).not.toHaveProperty('available-packages');
    expect(renderRootPackagesJson({ availablePackages: undefined }).toString()).not.toMatch(/https?:/);
  });
});
