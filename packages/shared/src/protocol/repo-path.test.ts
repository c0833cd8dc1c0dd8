import { describe, expect, it } from 'vitest';
import { assertRepoPath, isRepoPath, repoPathFromUrl } from './repo-path.js';

describe('repo paths', () => {
  it('accepts Composer repository paths', () => {
    for (const path of [
      'packages.json',
      'p2/acme/foo.json',
      'p2/acme/foo~dev.json',
      'include/all$0123abcd.json',
      'p/provider-2024$ab.json',
    ]) {
      expect(assertRepoPath(path)).toBe(path);
    }
  });

  it.each([
    ['', 'empty'],
    ['/etc/passwd', 'leading slash'],
    ['p2/../../etc/passwd', 'dot segment'],
    ['p2/./x.json', 'dot segment'],
    ['p2//x.json', 'empty segment'],
    ['p2\\..\\x.json', 'backslash'],
    ['p2/x\u0000.json', 'NUL'],
    ['.git/config', 'dotfile'],
    ['p2/' + 'a'.repeat(600), 'overlong'],
  ])('rejects %j (%s)', (path) => {
    expect(isRepoPath(path)).toBe(false);
    expect(() => assertRepoPath(path)).toThrow(expect.objectContaining({ code: 'METASYNC_ERR_PATH_INVALID' }));
  });

  it.each([
    '/p2/%2e%2e/%2e%2e/etc/passwd',
    '/p2/..%2f..%2fetc/passwd',
    '/p2/acme%5cfoo.json',
    '/p2/foo%00.json',
    '/p2/%zz.json',
    'http://evil.example/p2/a/b.json',
    '//evil.example/x',
  ])('refuses request target %j', (url) => {
    expect(() => repoPathFromUrl(url)).toThrow(expect.objectContaining({ code: 'METASYNC_ERR_PATH_INVALID' }));
  });

  it('decodes a request path once and drops the query', () => {
    expect(repoPathFromUrl('/p2/acme/foo~dev.json?x=1')).toBe('p2/acme/foo~dev.json');
    expect(repoPathFromUrl('/p2/acme/foo%7Edev.json')).toBe('p2/acme/foo~dev.json');
  });
});
