import { mkdtemp, mkdir, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve, sep } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRepoPath } from '@metasync/shared';
import { readSourceFile, relativeSourcePath } from './paths.js';

/**
 * The watcher's mapping between files under --source and repository paths,
 * over generated paths: a file outside the root never gets a repository path,
 * and reading a repository path never returns bytes from outside the root,
 * whatever the path or the symlinks in the tree.
 */
const ROOT = resolve('/srv/source-root');
const segment = fc.oneof(
  fc.constantFrom('..', '.', '', 'p2', 'acme', 'foo.json', '.hidden', 'source-root', 'source-root-evil', '~', 'a b'),
  fc.string({ maxLength: 8 }),
);
const absolute = fc
  .tuple(
    fc.constantFrom('/srv/source-root', '/srv', '/', '/srv/source-root/', '/srv/source-root-evil'),
    fc.array(segment, { maxLength: 6 }),
  )
  .map(([base, parts]) => `${base}/${parts.join('/')}`);

let root: string;
let outside: string;
const SECRET = 'outside-bytes-must-not-be-read-5e1a';

beforeAll(async () => {
  const base = await realpath(await mkdtemp(join(tmpdir(), 'watcher-paths-')));
  root = join(base, 'root');
  outside = join(base, 'outside');
  await mkdir(join(root, 'p2', 'acme'), { recursive: true });
  await mkdir(outside, { recursive: true });
  await writeFile(join(outside, 'secret.json'), SECRET);
  await writeFile(join(root, 'p2', 'acme', 'foo.json'), '{"inside":true}');
  // Links out of the tree, by file and by directory, and one inside it.
  await symlink(join(outside, 'secret.json'), join(root, 'p2', 'leak.json'));
  await symlink(outside, join(root, 'p2', 'out'));
  await symlink(join(root, 'p2', 'acme', 'foo.json'), join(root, 'p2', 'alias.json'));
});

afterAll(async () => {
  await rm(join(root, '..'), { recursive: true, force: true });
});

describe('watcher path mapping (property)', () => {
  it('maps a file to a repository path only when it lies under the root, and that path leads back to the file', () => {
    fc.assert(
      fc.property(absolute, (file) => {
        const rel = relativeSourcePath(ROOT, file);
        if (rel === undefined) return;
        const back = resolve(ROOT, rel);
        expect(back).toBe(resolve(file));
        expect(back.startsWith(ROOT + sep)).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });

  it('reads a repository path only from inside the root, refusing links that lead out', async () => {
    const names = fc.oneof(
      fc.constantFrom(
        'p2/acme/foo.json',
        'p2/leak.json',
        'p2/out/secret.json',
        'p2/alias.json',
        'p2/../../outside/secret.json',
        '../outside/secret.json',
        'p2/out',
        'p2',
        'p2/missing.json',
        'p2/acme/foo.json/x',
      ),
      fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/')),
    );
    await fc.assert(
      fc.asyncProperty(names, async (relPath) => {
        const read = readSourceFile({ rootReal: root, maxFileBytes: 1024 * 1024 }, relPath);
        if (read.kind !== 'file') return;
        expect(isRepoPath(relPath)).toBe(true);
        expect(read.file.bytes.toString('utf8')).not.toContain(SECRET);
      }),
      { numRuns: 300 },
    );
    // The tree's own files are read (the property is not vacuous), links out are refused.
    expect(readSourceFile({ rootReal: root, maxFileBytes: 1024 }, 'p2/alias.json').kind).toBe('file');
    expect(readSourceFile({ rootReal: root, maxFileBytes: 1024 }, 'p2/leak.json').kind).toBe('refused');
    expect(readSourceFile({ rootReal: root, maxFileBytes: 1024 }, 'p2/out/secret.json').kind).toBe('refused');
  });
});
