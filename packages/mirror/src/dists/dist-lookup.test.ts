import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { findDist } from './dist-lookup.js';

const doc = (versions: unknown[]) => Buffer.from(JSON.stringify({ packages: { 'acme/foo': versions }, minified: 'composer/2.0' }));
const key = (reference: string, type: 'zip' | 'tar' = 'zip') => ({ package: 'acme/foo', reference, type });

describe('findDist', () => {
  const versions = doc([
    { name: 'acme/foo', version: '2.0.0', dist: { type: 'zip', url: 'https://h/2.zip', reference: 'bb22', shasum: 'a'.repeat(40) } },
    { version: '1.5.0' }, // inherits 2.0.0's dist in the minified format
    { version: '1.0.0', dist: { type: 'zip', url: 'https://h/1.zip', reference: 'v1.0.0', shasum: '' } },
    { version: '0.9.0', dist: '__unset' },
  ]);

  it('finds a dist by reference and type, with its shasum when the metadata has one', () => {
    expect(findDist(versions, key('bb22'))).toEqual({ url: 'https://h/2.zip', shasum: 'a'.repeat(40) });
    expect(findDist(versions, key('bb22', 'tar'))).toBeUndefined();
  });

  it('matches a non-hex reference by its md5, as Composer puts it in the URL', () => {
    const md5 = createHash('md5').update('v1.0.0').digest('hex');
    expect(findDist(versions, key(md5))).toEqual({ url: 'https://h/1.zip', shasum: undefined });
  });

  it('finds nothing for unknown references, other packages or documents that are not p2 JSON', () => {
    expect(findDist(versions, key('cc33'))).toBeUndefined();
    expect(findDist(versions, { package: 'acme/bar', reference: 'bb22', type: 'zip' })).toBeUndefined();
    expect(findDist(Buffer.from('not json'), key('bb22'))).toBeUndefined();
  });
});
