import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isMetasyncError } from '@metasync/shared';
import {
  createTokenMatcher,
  mintToken,
  parseTokensFile,
  serializeTokensFile,
  sha256OfSecret,
  staticTokenEntries,
  vendorAllowed,
} from './tokens.js';

describe('vendorAllowed', () => {
  it.each([
    [['acme'], 'acme', true],
    [['acme'], 'acme-labs', false],
    [['acme'], 'acm', false],
    [['acme-*'], 'acme-labs', true],
    [['acme-*'], 'acme-', true],
    [['acme-*'], 'acme', false],
    [['acme-*'], 'xacme-labs', false],
    [['*-bot'], 'deploy-bot', true],
    [['*-bot'], 'deploy-bots', false],
    [['a.b'], 'axb', false],
    [['*'], 'anything', true],
    [['other', 'acme'], 'acme', true],
  ] as const)('%j admits %s: %s', (patterns, vendor, expected) => {
    expect(vendorAllowed(patterns, vendor)).toBe(expected);
  });
});

describe('vendorAllowed (properties)', () => {
  const vendor = fc.stringMatching(/^[a-z0-9]([_.-]?[a-z0-9]+){0,4}$/);

  it('an exact pattern admits only that vendor; `prefix*` admits exactly the vendors starting with prefix; `*` admits all', () => {
    fc.assert(
      fc.property(vendor, vendor, (a, b) => {
        expect(vendorAllowed([a], b)).toBe(a === b);
        expect(vendorAllowed([`${a}*`], b)).toBe(b.startsWith(a));
        expect(vendorAllowed([`*${a}`], b)).toBe(b.endsWith(a));
        expect(vendorAllowed(['*'], b)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('never admits a vendor because of a regex metacharacter in the pattern', () => {
    fc.assert(
      fc.property(vendor, vendor, (a, b) => {
        fc.pre(a.includes('.'));
        expect(vendorAllowed([a], a.replaceAll('.', 'x'))).toBe(false);
        expect(vendorAllowed([a], b)).toBe(a === b);
      }),
      { numRuns: 300 },
    );
  });
});

describe('parseTokensFile', () => {
  const good = { id: 'ci-acme', sha256: sha256OfSecret('s1'), vendors: ['acme'] };

  it('fills admin and revoked with false', () => {
    expect(parseTokensFile(JSON.stringify({ tokens: [good] }), '/t.json')).toEqual([{ ...good, admin: false, revoked: false }]);
  });

  it.each([
    ['not JSON', '{"tokens": [', 'not valid JSON'],
    ['no tokens array', '{}', 'tokens'],
    ['a clear secret instead of a hash', JSON.stringify({ tokens: [{ ...good, sha256: 's1' }] }), 'tokens.0.sha256'],
    ['no vendors', JSON.stringify({ tokens: [{ ...good, vendors: [] }] }), 'tokens.0.vendors'],
    ['an uppercase vendor', JSON.stringify({ tokens: [{ ...good, vendors: ['Acme'] }] }), 'tokens.0.vendors.0'],
    ['a duplicate id', JSON.stringify({ tokens: [good, { ...good, sha256: sha256OfSecret('s2') }] }), 'used twice'],
    ['a duplicate secret', JSON.stringify({ tokens: [good, { ...good, id: 'other' }] }), 'same secret'],
  ])('refuses %s, naming the file and the problem', (_title, text, problem) => {
    let caught: unknown;
    try {
      parseTokensFile(text, '/etc/metasync/tokens.json');
    } catch (err) {
      caught = err;
    }
    expect(isMetasyncError(caught, 'METASYNC_ERR_CONFIG_INVALID')).toBe(true);
    expect((caught as Error).message).toContain('/etc/metasync/tokens.json');
    expect((caught as Error).message).toContain(problem);
  });
});

describe('createTokenMatcher', () => {
  const minted = mintToken({ id: 'ci-acme', vendors: ['acme'], admin: false, nowMs: 0 });
  const revoked = mintToken({ id: 'old', vendors: ['*'], admin: true, nowMs: 0 });
  const match = createTokenMatcher([...staticTokenEntries(['env-secret']), minted.entry, { ...revoked.entry, revoked: true }]);

  it('identifies a minted token by id and scope, never storing its secret', () => {
    expect(minted.secret).toMatch(/^mst_[A-Za-z0-9_-]{43}$/);
    expect(serializeTokensFile([minted.entry])).not.toContain(minted.secret);
    expect(match(minted.secret)).toEqual({ ok: true, identity: { id: 'ci-acme', vendors: ['acme'], admin: false } });
  });

  it('treats a clear env token as an all-vendor admin token', () => {
    expect(match('env-secret')).toEqual({ ok: true, identity: { id: 'env-1', vendors: ['*'], admin: true } });
  });

  it('refuses unknown and revoked tokens, naming only the revoked one for the log', () => {
    expect(match('nope')).toEqual({ ok: false });
    expect(match(`${minted.secret}x`)).toEqual({ ok: false });
    expect(match(revoked.secret)).toEqual({ ok: false, revokedId: 'old' });
  });

  it('round-trips through the file format', () => {
    const entries = parseTokensFile(serializeTokensFile([minted.entry]), '/t.json');
    expect(createTokenMatcher(entries)(minted.secret)).toMatchObject({ ok: true, identity: { id: 'ci-acme' } });
  });
});
