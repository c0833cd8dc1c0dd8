import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/daemon.js';

const execFileAsync = promisify(execFile);

/** The bins users and systemd start; each must run the gate before loading the program. */
const BIN_FILES = {
  'metasync-primary': `${REPO_ROOT}packages/primary/bin/metasync-primary.js`,
  'metasync-mirror': `${REPO_ROOT}packages/mirror/bin/metasync-mirror.js`,
  metasync: `${REPO_ROOT}infra/bin/metasync.js`,
} as const;

/** Loaded before the bin: makes this Node report itself as 20.19.1, the way an old system Node would. */
const PRETEND_NODE_20 = `data:text/javascript,${encodeURIComponent(
  "Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '20.19.1' } });",
)}`;

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, args, { timeout: 15_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

describe('the bins on an old Node', () => {
  it.each(Object.entries(BIN_FILES))('%s refuses to start, says which Node it needs, exits 2', async (program, bin) => {
    const result = await run(['--import', PRETEND_NODE_20, bin, '--help']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`METASYNC_ERR_NODE_UNSUPPORTED: ${program} needs Node.js 24 or newer; this is Node.js 20.19.1`);
    expect(result.stderr).toContain('bash scripts/setup.sh');
  });

  it.each(Object.entries(BIN_FILES))('%s starts on this Node', async (_program, bin) => {
    expect(Number.parseInt(process.versions.node, 10)).toBeGreaterThanOrEqual(24);
    const result = await run([bin, '--help']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/usage|Usage/);
  });
});
