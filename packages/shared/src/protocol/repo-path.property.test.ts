import { resolve, sep } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { objectRelPath } from './content-address.js';
import { isMetasyncError } from '../errors.js';
import { assertRepoPath, isRepoPath, repoPathFromUrl } from './repo-path.js';

/**
 * Path normalisation, checked over generated hostile input: whatever comes in,
 * the answer is METASYNC_ERR_PATH_INVALID or a path that, joined to a data dir,
 * stays inside it with no `.`/`..` segment, no backslash, no NUL, no `%`
 * (so nothing downstream can decode it a second time into something else).
 */
const DATA_DIR = resolve('/srv/metasync-data');

/** Pieces attackers combine: dot segments, encoded separators and dots (single and double), NUL, backslashes, unicode. */
const hostilePiece = fc.constantFrom(
  '.',
  '..',
  '...',
  '/',
  '//',
  '\\',
  '\0',
  '%00',
  '%2e',
  '%2E',
  '%2e%2e',
  '%2E%2e',
  '.%2e',
  '%2f',
  '%2F',
  '%5c',
  '%5C',
  '%252e',
  '%252f',
  '%25',
  '%',
  '%zz',
  '%c0%ae',
  '%c0%af',
  '%e2%80%ae',
  '..%2f',
  '%2e%2e%2f',
  '~',
  '$',
  '@',
  '+',
  '=',
  '?',
  '#',
  ';',
  ':',
  ' ',
  '%20',
  '\u2025',
  '\uff0e',
  '\u0130',
  '\ud800',
  'é',
  '%C3%A9',
  'p2',
  'acme',
  'foo.json',
  '.git',
  'etc',
  'passwd',
);
const segmentChars = fc.string({ unit: fc.constantFrom(...'abcxyz019_.~-$@+='.split('')), minLength: 1, maxLength: 12 });
const piece = fc.oneof(
  { weight: 3, arbitrary: hostilePiece },
  { weight: 2, arbitrary: segmentChars },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 4 }) },
);
const hostilePath = fc.array(piece, { maxLength: 14 }).map((parts) => parts.join(''));
const hostileUrl = fc
  .tuple(fc.constantFrom('/', '', '//', 'http://evil.example/', '/p2/', '\\'), hostilePath)
  .map(([head, rest]) => head + rest);

/** A valid repository path: 1-5 segments of allowed characters, none starting with a dot. */
const validSegment = fc
  .tuple(
    fc.constantFrom(...'abcxyz019_~-$@+='.split('')),
    fc.string({ unit: fc.constantFrom(...'abcxyz019_.~-$@+='.split('')), maxLength: 20 }),
  )
  .map(([first, rest]) => first + rest);
const validPath = fc.array(validSegment, { minLength: 1, maxLength: 5 }).map((segments) => segments.join('/'));

/** The invariant every accepted path must meet when it becomes a file name under the data dir. */
function expectConfined(path: string): void {
  const segments = path.split('/');
  expect(segments.every((s) => s !== '' && s !== '.' && s !== '..' && !s.startsWith('.'))).toBe(true);
  expect(/[\\\0%]/.test(path)).toBe(false);
  const onDisk = resolve(DATA_DIR, path);
  expect(onDisk.startsWith(DATA_DIR + sep)).toBe(true);
  // Joining did not normalise anything away: the path names exactly that file.
  expect(onDisk).toBe(`${DATA_DIR}${sep}${segments.join(sep)}`);
}

function acceptedOrPathInvalid<T>(run: () => T): T | undefined {
  try {
    return run();
  } catch (err) {
    if (!isMetasyncError(err, 'METASYNC_ERR_PATH_INVALID')) throw err;
    return undefined;
  }
}

describe('repository path normalisation (property)', () => {
  it('assertRepoPath returns its input unchanged and confined, or throws METASYNC_ERR_PATH_INVALID', () => {
    fc.assert(
      fc.property(fc.oneof(hostilePath, fc.string(), fc.string({ unit: 'binary' })), (path) => {
        const accepted = acceptedOrPathInvalid(() => assertRepoPath(path));
        expect(isRepoPath(path)).toBe(accepted !== undefined);
        if (accepted === undefined) return;
        expect(accepted).toBe(path);
        expectConfined(accepted);
      }),
      { numRuns: 3_000 },
    );
  });

  it('repoPathFromUrl turns any request target into a confined repository path or METASYNC_ERR_PATH_INVALID', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          hostileUrl,
          fc.string().map((s) => `/${s}`),
        ),
        (url) => {
          const path = acceptedOrPathInvalid(() => repoPathFromUrl(url));
          if (path === undefined) return;
          expectConfined(path);
          expect(isRepoPath(path)).toBe(true);
        },
      ),
      { numRuns: 3_000 },
    );
  });

  it('decodes exactly once: the accepted path is the single decoding of the raw path, never a further one', () => {
    fc.assert(
      fc.property(hostileUrl, (url) => {
        const path = acceptedOrPathInvalid(() => repoPathFromUrl(url));
        if (path === undefined) return;
        const raw = url.slice(1).split(/[?#]/, 1)[0]!;
        expect(path).toBe(decodeURIComponent(raw));
        // Had the raw path carried an encoded escape (%25xx), the single decoding still holds a '%', which is refused.
        expect(path.includes('%')).toBe(false);
      }),
      { numRuns: 3_000 },
    );
  });

  it('round-trips every valid path through percent-encoding of any of its characters', () => {
    fc.assert(
      fc.property(
        validPath,
        fc.array(fc.boolean(), { maxLength: 120 }),
        fc.constantFrom('', '?x=1', '#frag'),
        (path, encodeMask, suffix) => {
          const encoded = [...path]
            .map((char, i) => (char !== '/' && encodeMask[i] === true ? `%${char.charCodeAt(0).toString(16).padStart(2, '0')}` : char))
            .join('');
          expect(repoPathFromUrl(`/${encoded}${suffix}`)).toBe(path);
          expectConfined(path);
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it('refuses every doubly-encoded or encoded-separator form of a traversal', () => {
    const dots = fc.constantFrom('..', '%2e%2e', '%2E%2E', '.%2e', '%2e.', '%252e%252e', '%252E.');
    const slash = fc.constantFrom('%2f', '%2F', '%5c', '%5C', '%252f', '\\');
    fc.assert(
      fc.property(
        fc.array(fc.tuple(dots, slash), { minLength: 1, maxLength: 6 }),
        fc.constantFrom('etc/passwd', 'p2/acme/foo.json', ''),
        (steps, tail) => {
          const url = `/p2/${steps.map(([d, s]) => d + s).join('')}${tail}`;
          expect(acceptedOrPathInvalid(() => repoPathFromUrl(url))).toBeUndefined();
        },
      ),
      { numRuns: 500 },
    );
  });

  it('maps only lowercase sha256 hex to an object file, always inside the objects dir', () => {
    const hexish = fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF./\\%\0'.split('')), minLength: 60, maxLength: 68 });
    fc.assert(
      fc.property(fc.oneof(hexish, fc.string(), fc.stringMatching(/^[0-9a-f]{64}$/)), (candidate) => {
        let rel: string;
        try {
          rel = objectRelPath(candidate);
        } catch (err) {
          expect(err).toBeInstanceOf(TypeError);
          expect(/^[0-9a-f]{64}$/.test(candidate)).toBe(false);
          return;
        }
        expect(/^[0-9a-f]{64}$/.test(candidate)).toBe(true);
        expect(rel).toBe(`${candidate.slice(0, 2)}/${candidate.slice(2)}`);
        expect(resolve(DATA_DIR, 'objects', rel).startsWith(`${DATA_DIR}${sep}objects${sep}`)).toBe(true);
      }),
      { numRuns: 1_000 },
    );
  });
});
