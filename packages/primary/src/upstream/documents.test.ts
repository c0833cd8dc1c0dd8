import { describe, expect, it } from 'vitest';
import { checkUpstreamP2, parseChanges, parseStartTimestamp, parseUpstreamRoot, partitionNames, rootUrlOf } from './documents.js';

const bytes = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

describe('upstream documents', () => {
  it('finds packages.json under a base URL, and takes a .json URL as is', () => {
    expect(rootUrlOf('https://repo.packagist.org')).toBe('https://repo.packagist.org/packages.json');
    expect(rootUrlOf('http://127.0.0.1:8080/sub/')).toBe('http://127.0.0.1:8080/sub/packages.json');
    expect(rootUrlOf('https://example.test/custom.json')).toBe('https://example.test/custom.json');
  });

  it('resolves a relative metadata-url against the root, and keeps an absolute one (packagist.org since 2025)', () => {
    const relative = parseUpstreamRoot(bytes({ packages: [], 'metadata-url': '/p2/%package%.json' }), 'http://127.0.0.1:9/packages.json');
    expect(relative).toEqual({
      metadataUrl: 'http://127.0.0.1:9/p2/%package%.json',
      changesUrl: 'http://127.0.0.1:9/metadata/changes.json',
      listUrl: 'http://127.0.0.1:9/packages/list.json',
      availablePackages: undefined,
    });
    const absolute = parseUpstreamRoot(
      bytes({
        'metadata-url': 'https://repo.packagist.org/p2/%package%.json',
        'metadata-changes-url': 'https://packagist.org/metadata/changes.json',
        'available-packages': ['a/b'],
      }),
      'https://repo.packagist.org/packages.json',
    );
    expect(absolute.metadataUrl).toBe('https://repo.packagist.org/p2/%package%.json');
    expect(absolute.changesUrl).toBe('https://packagist.org/metadata/changes.json');
    expect(absolute.availablePackages).toEqual(['a/b']);
    expect(absolute.listUrl).toBeUndefined();
  });

  it('refuses a root without a metadata-url, or pointing at a non-http scheme', () => {
    expect(() => parseUpstreamRoot(bytes({ packages: [] }), 'http://h/packages.json')).toThrow(
      expect.objectContaining({ code: 'METASYNC_ERR_UPSTREAM_INVALID' }),
    );
    expect(() => parseUpstreamRoot(bytes({ 'metadata-url': 'file:///etc/%package%' }), 'http://h/packages.json')).toThrow(/not http/);
    expect(() => parseUpstreamRoot(Buffer.from('{"metadata-url": "/p2/%pack'), 'http://h/packages.json')).toThrow(/not valid JSON/);
  });

  it("keeps only names that pass Composer's rule (no traversal, no upper case, no junk)", () => {
    const { valid, refused } = partitionNames([
      'acme/a',
      'acme/a',
      '../../etc/passwd',
      'Acme/Upper',
      'a/b/c',
      'a/..',
      7,
      'acme/x--y',
      'vendor/p2.json',
    ]);
    expect(valid).toEqual(['acme/a', 'acme/x--y', 'vendor/p2.json']);
    expect(refused).toEqual(['../../etc/passwd', 'Acme/Upper', 'a/b/c', 'a/..', '7']);
  });

  it('accepts a p2 file for its own package only (empty version lists too), refuses others and non-JSON', () => {
    expect(() => checkUpstreamP2('acme/a', bytes({ packages: { 'acme/a': [] }, minified: 'composer/2.0' }), 'u')).not.toThrow();
    expect(() => checkUpstreamP2('acme/a~dev', bytes({ packages: { 'acme/a': [{ version: 'dev-main' }] } }), 'u')).not.toThrow();
    for (const bad of [
      bytes({ packages: { 'evil/x': [] } }),
      bytes({ packages: { 'acme/a': [], 'evil/x': [] } }),
      bytes({ packages: { 'acme/a': {} } }),
      bytes({ packages: [] }),
      Buffer.from('{"packages": {"acme/a": ['),
    ]) {
      expect(() => checkUpstreamP2('acme/a', bad, 'u')).toThrow(expect.objectContaining({ code: 'METASYNC_ERR_UPSTREAM_INVALID' }));
    }
  });

  it('reads change-feed actions, dropping those naming no valid package', () => {
    const changes = parseChanges(
      bytes({
        actions: [
          { type: 'update', package: 'acme/a', time: 100 },
          { type: 'delete', package: 'acme/b~dev', time: 101 },
          { type: 'update', package: '../x/y', time: 102 },
          { type: 'frobnicate', package: 'acme/c', time: 103 },
        ],
        timestamp: 1_020_000,
      }),
      'u',
    );
    expect(changes.actions).toEqual([
      { type: 'update', key: 'acme/a', timeS: 100 },
      { type: 'delete', key: 'acme/b~dev', timeS: 101 },
    ]);
    expect(changes.refusedKeys).toEqual(['../x/y', 'acme/c']);
    expect(parseChanges(bytes({ actions: [{ type: 'resync', package: '*', time: 1 }], timestamp: 5 }), 'u').actions).toEqual([
      { type: 'resync' },
    ]);
    expect(() => parseChanges(bytes({ actions: [] }), 'u')).toThrow(/not a change feed/);
  });

  it("takes the start cursor from the feed's 400 answer", () => {
    expect(parseStartTimestamp(bytes({ error: 'missing since', timestamp: 17_000_000_000_000 }), 'u')).toBe(17_000_000_000_000);
    expect(() => parseStartTimestamp(bytes({ error: 'x' }), 'u')).toThrow(/no start "timestamp"/);
  });
});
