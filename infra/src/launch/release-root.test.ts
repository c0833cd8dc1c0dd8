import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIRROR_MAIN, mirrorMainFor, OWN_ROOT, ownVersion } from './release-root.js';

describe('mirrorMainFor: which mirror build a release version runs', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'metasync-release-root-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("runs this tree's build for the CLI's own version", async () => {
    expect(await mirrorMainFor({ version: ownVersion(), releases: {}, launchDir: dir })).toBe(join(OWN_ROOT, MIRROR_MAIN));
  });

  it('unpacks a release tarball once under the launch dir and runs its mirror', async () => {
    const tree = join(dir, 'stage', 'metasync-9.9.9');
    await mkdir(join(tree, 'packages', 'mirror', 'dist'), { recursive: true });
    await writeFile(join(tree, MIRROR_MAIN), '// release 9.9.9\n');
    const tarball = join(dir, 'metasync-9.9.9.tar.gz');
    execFileSync('tar', ['-czf', tarball, '-C', join(dir, 'stage'), 'metasync-9.9.9']);
    const launchDir = join(dir, 'launch');
    const main = await mirrorMainFor({ version: '9.9.9', releases: { '9.9.9': tarball }, launchDir });
    expect(main).toBe(join(launchDir, 'releases', '9.9.9', MIRROR_MAIN));
    expect(await readFile(main, 'utf8')).toBe('// release 9.9.9\n');
    // Unpacked once: a second launch of the same release uses the tree as it is.
    await writeFile(main, '// unpacked earlier\n');
    await mirrorMainFor({ version: '9.9.9', releases: { '9.9.9': tarball }, launchDir });
    expect(await readFile(main, 'utf8')).toBe('// unpacked earlier\n');
  });

  it('refuses a release dir without a built mirror, naming what is missing', async () => {
    await expect(mirrorMainFor({ version: '1.2.3', releases: { '1.2.3': dir }, launchDir: dir })).rejects.toMatchObject({
      code: 'METASYNC_ERR_CLI_USAGE',
      message: expect.stringContaining(`release 1.2.3 at ${dir} has no ${MIRROR_MAIN}`),
    });
  });
});
