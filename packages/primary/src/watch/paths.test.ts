import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isIgnoredRelative, readSourceFile, relativeSourcePath } from './paths.js';

let base: string;
let root: string;

beforeEach(async () => {
  base = await realpath(await mkdtemp(join(tmpdir(), 'metasync-source-paths-')));
  root = join(base, 'root');
  await mkdir(join(root, 'p2/acme'), { recursive: true });
  await mkdir(join(base, 'outside'));
  await writeFile(join(base, 'outside/secret.json'), '{"secret":true}');
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('source paths', () => {
  it('ignores temp, editor and dot files anywhere in the path', () => {
    for (const path of ['p2/a.json.tmp', 'p2/.#a.json', 'p2/a.json~', 'p2/.a.json.swp', 'x.swp', '.git/config', 'p2/.hidden/a.json'])
      expect(isIgnoredRelative(path)).toBe(true);
    for (const path of ['p2/acme/foo.json', 'p2/acme/foo~dev.json', 'packages.json']) expect(isIgnoredRelative(path)).toBe(false);
    expect(relativeSourcePath('/src', '/src/p2/a.json')).toBe('p2/a.json');
    expect(relativeSourcePath('/src', '/elsewhere/a.json')).toBeUndefined();
  });

  it('reads a regular file and a symlink that stays inside the tree', async () => {
    await writeFile(join(root, 'p2/acme/foo.json'), '{}');
    await symlink(join(root, 'p2/acme/foo.json'), join(root, 'p2/acme/alias.json'));
    const options = { rootReal: root, maxFileBytes: 1024 };
    expect(readSourceFile(options, 'p2/acme/foo.json')).toMatchObject({ kind: 'file' });
    expect(readSourceFile(options, 'p2/acme/alias.json')).toMatchObject({ kind: 'file' });
    expect(readSourceFile(options, 'p2/acme/none.json')).toEqual({ kind: 'missing' });
  });

  it('refuses a symlink leading out, directly or through a parent directory, without reading it', async () => {
    await symlink(join(base, 'outside/secret.json'), join(root, 'p2/acme/leak.json'));
    await symlink(join(base, 'outside'), join(root, 'p2/linked'));
    const options = { rootReal: root, maxFileBytes: 1024 };
    expect(readSourceFile(options, 'p2/acme/leak.json')).toMatchObject({ kind: 'refused' });
    expect(readSourceFile(options, 'p2/linked/secret.json')).toMatchObject({ kind: 'refused' });
  });

  it('skips directories and FIFOs without blocking, and refuses oversize files', async () => {
    execFileSync('mkfifo', [join(root, 'p2/acme/pipe.json')]);
    await writeFile(join(root, 'big.json'), 'x'.repeat(2048));
    const options = { rootReal: root, maxFileBytes: 1024 };
    expect(readSourceFile(options, 'p2/acme/pipe.json')).toEqual({ kind: 'skipped' });
    expect(readSourceFile(options, 'p2/acme')).toEqual({ kind: 'skipped' });
    expect(readSourceFile(options, 'big.json')).toMatchObject({ kind: 'refused' });
  });
});
