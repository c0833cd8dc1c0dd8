import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/daemon.js';

const execFileAsync = promisify(execFile);
const VERSION = 'test';
const NAME = `metasync-${VERSION}`;

/**
 * `pnpm release` is what servers boot (infra/templates/cloud-init): build it from
 * dist/ as the suite built it, unpack it where no workspace is around, and run it.
 */
describe('the release artifact', () => {
  let work = '';
  let unpacked = '';
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'metasync-release-'));
    const out = join(work, 'out');
    await execFileAsync('bash', [join(REPO_ROOT, 'scripts', 'release.sh')], {
      env: { ...process.env, METASYNC_SKIP_BUILD: '1', RELEASE_OUT: out, RELEASE_VERSION: VERSION },
      timeout: 170_000,
    });
    unpacked = join(work, 'server');
    await execFileAsync('mkdir', ['-p', unpacked]);
    await execFileAsync('tar', ['-xzf', join(out, `${NAME}.tar.gz`), '-C', unpacked, '--strip-components=1']);
  }, 180_000);
  afterAll(async () => {
    if (work !== '') await rm(work, { recursive: true, force: true });
  });

  it('comes with a sha256 file that sha256sum -c accepts', async () => {
    const out = join(work, 'out');
    const line = await readFile(join(out, `${NAME}.tar.gz.sha256`), 'utf8');
    const digest = createHash('sha256')
      .update(await readFile(join(out, `${NAME}.tar.gz`)))
      .digest('hex');
    expect(line).toBe(`${digest}  ${NAME}.tar.gz\n`);
    await execFileAsync('sha256sum', ['-c', `${NAME}.tar.gz.sha256`], { cwd: out });
  });

  it.each([
    ['packages/primary/bin/metasync-primary.js', 'Usage: metasync-primary'],
    ['packages/mirror/bin/metasync-mirror.js', 'Usage: metasync-mirror'],
    ['infra/bin/metasync.js', 'Usage: metasync'],
  ])('runs %s from the unpacked tree alone', async (bin, usage) => {
    const { stdout } = await execFileAsync(process.execPath, [join(unpacked, bin), '--help'], { cwd: unpacked, timeout: 15_000 });
    expect(stdout).toContain(usage);
  });

  it('holds what cloud-init uses: NODE_VERSION as pinned, the systemd units and the files they start', () => {
    expect(readFileSync(join(unpacked, 'NODE_VERSION'), 'utf8')).toBe(readFileSync(join(REPO_ROOT, '.node-version'), 'utf8'));
    for (const unit of ['metasync-mirror.service', 'metasync-primary.service']) {
      const text = readFileSync(join(unpacked, 'infra', 'templates', 'systemd', unit), 'utf8');
      // node, its flags (PRIMARY_NODE_FLAGS, MIRROR_NODE_FLAGS), then the script the unit starts.
      const started = /^ExecStart=\S+(?: --\S+)* \/opt\/metasync\/(\S+)$/m.exec(text)?.[1];
      expect(started !== undefined && existsSync(join(unpacked, started)), unit).toBe(true);
    }
  });

  it('carries no sources, tests or dev dependencies', () => {
    for (const absent of ['packages/mirror/src', 'packages/primary/src', 'test', 'bench'])
      expect(existsSync(join(unpacked, absent)), absent).toBe(false);
    const installed = readdirSync(join(unpacked, 'node_modules', '.pnpm'));
    expect(installed.some((name) => name.startsWith('fastify@'))).toBe(true);
    expect(installed.filter((name) => /^(typescript|vitest|eslint|tsx|prettier)@/.test(name))).toEqual([]);
  });
});
