import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runCli } from './cli-program.js';
import { EXIT } from './exit-codes.js';

/** Runs the CLI in-process with captured output; `env` is all it sees (no METASYNC_* from the caller). */
async function run(argv: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, {
    env,
    io: { out: (text) => out.push(text), err: (text) => err.push(text), progressStream: new PassThrough() },
  });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

describe('metasync without a primary', () => {
  const dir = mkdtempSync(join(tmpdir(), 'metasync-cli-program-'));
  const configWithMirrorsOnly = join(dir, 'mirrors-only.json');
  writeFileSync(configWithMirrorsOnly, JSON.stringify({ mirrors: { m1: { url: 'http://192.0.2.1:8081', region: 'eu-west-1' } } }));

  it.each([
    ['mirrors list', ['mirrors', 'list']],
    ['mirrors list --json', ['mirrors', 'list', '--json']],
    ['status', ['status']],
    ['status --json', ['status', '--json']],
  ])('%s is a usage error (exit 2) naming --primary and METASYNC_PRIMARY, and prints no table', async (_title, argv) => {
    // A mistyped variable must not pass as "no mirrors".
    const result = await run(argv, { METASYNC_PRIMRY: 'http://127.0.0.1:9' });
    expect(result.code).toBe(EXIT.usage);
    expect(result.stderr).toMatch(/^METASYNC_ERR_CLI_USAGE: no primary URL: pass --primary or set METASYNC_PRIMARY/);
    expect(result.stdout).toBe('');
  });

  it('mirrors list refuses even when the config file lists mirrors, and an empty METASYNC_PRIMARY counts as unset', async () => {
    const fromFile = await run(['mirrors', 'list'], { METASYNC_CONFIG: configWithMirrorsOnly });
    expect(fromFile.code).toBe(EXIT.usage);
    expect(fromFile.stderr).toContain('--primary');
    expect(fromFile.stdout).toBe('');
    const empty = await run(['mirrors', 'list', '--json'], { METASYNC_PRIMARY: '' });
    expect(empty.code).toBe(EXIT.usage);
    expect(empty.stderr).toContain('METASYNC_PRIMARY');
  });
});
