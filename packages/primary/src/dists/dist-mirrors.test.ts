import { describe, expect, it } from 'vitest';
import { distMirrorUrl, isP2Path, withDistMirrors, withRootDistMirror } from './dist-mirrors.js';

const MIRROR = { url: 'https://repo.example.com/dists/%package%/%reference%.%type%', preferred: true };
const doc = (packages: unknown) => Buffer.from(JSON.stringify({ packages, minified: 'composer/2.0' }));
const parse = (bytes: Buffer) => JSON.parse(bytes.toString()) as { packages: Record<string, Array<Record<string, unknown>>> };

describe('withDistMirrors', () => {
  it('adds the preferred mirror to every dist with a url and keeps the url as the fallback', () => {
    const input = doc({
      'acme/foo': [
        { name: 'acme/foo', version: '2.0.0', dist: { type: 'zip', url: 'https://codehost/2.zip', reference: 'b2', shasum: '' } },
        { version: '1.0.0', dist: { type: 'zip', url: 'https://codehost/1.zip', reference: 'a1' } },
        { version: '0.9.0', dist: '__unset' },
      ],
    });
    const out = parse(withDistMirrors(input, 'https://repo.example.com/'));
    const versions = out.packages['acme/foo']!;
    expect(versions[0]!.dist).toEqual({ type: 'zip', url: 'https://codehost/2.zip', reference: 'b2', shasum: '', mirrors: [MIRROR] });
    expect(versions[1]!.dist).toEqual({ type: 'zip', url: 'https://codehost/1.zip', reference: 'a1', mirrors: [MIRROR] });
    expect(versions[2]!.dist).toBe('__unset');
  });

  it('keeps mirrors already listed, after its own, and is idempotent (same Buffer back)', () => {
    const other = { url: 'https://other/%package%.%type%', preferred: false };
    const once = withDistMirrors(
      doc({ 'acme/foo': [{ version: '1.0.0', dist: { type: 'zip', url: 'u', mirrors: [other] } }] }),
      'https://repo.example.com',
    );
    expect(parse(once).packages['acme/foo']![0]!.dist).toEqual({ type: 'zip', url: 'u', mirrors: [MIRROR, other] });
    expect(withDistMirrors(once, 'https://repo.example.com')).toBe(once);
  });

  it('returns documents it cannot or need not change untouched', () => {
    for (const text of [
      'not json "dist"',
      '{"dist":1}',
      '[]',
      '{"packages":{"a/b":[{"version":"1.0.0"}]}}',
      '{"packages":{"a/b":[{"dist":{"type":"zip"}}]}}',
    ]) {
      const bytes = Buffer.from(text);
      expect(withDistMirrors(bytes, 'https://repo.example.com')).toBe(bytes);
    }
  });

  it('names the template Composer expands and recognises p2 paths only', () => {
    expect(distMirrorUrl('http://127.0.0.1:8080')).toBe('http://127.0.0.1:8080/dists/%package%/%reference%.%type%');
    expect(isP2Path('p2/acme/foo.json')).toBe(true);
    expect(isP2Path('p2/acme/foo~dev.json')).toBe(true);
    expect(isP2Path('packages.json')).toBe(false);
    expect(isP2Path('p/acme/foo.json')).toBe(false);
  });
});

describe('withRootDistMirror', () => {
  it('names the template as the repository dist mirror, first and preferred, once', () => {
    const root = Buffer.from(JSON.stringify({ packages: [], 'metadata-url': '/p2/%package%.json', mirrors: [{ 'git-url': 'g' }] }));
    const once = withRootDistMirror(root, 'https://repo.example.com');
    expect(JSON.parse(once.toString())).toEqual({
      packages: [],
      'metadata-url': '/p2/%package%.json',
      mirrors: [{ 'dist-url': 'https://repo.example.com/dists/%package%/%reference%.%type%', preferred: true }, { 'git-url': 'g' }],
    });
    expect(withRootDistMirror(once, 'https://repo.example.com')).toBe(once);
    const broken = Buffer.from('{');
    expect(withRootDistMirror(broken, 'https://repo.example.com')).toBe(broken);
  });
});
