import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTokenMatcher, parseTokensFile } from './tokens.js';
import { runTokenCommand } from './token-cli.js';

let dir: string;
let file: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-token-cli-'));
  file = join(dir, 'tokens.json');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runTokenCommand(argv, env, {
    stdout: (t) => stdout.push(t),
    stderr: (t) => stderr.push(t),
    nowMs: () => Date.parse('2026-11-22T06:00:00Z'),
  });
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}

describe('metasync-primary token', () => {
  it('creates a token whose printed secret matches the stored hash, with its scope', async () => {
    const created = await run(['create', '--vendor', 'acme', '--vendor', 'acme-*', '--id', 'ci-acme', '--admin'], {
      METASYNC_TOKENS_FILE: file,
    });
    expect(created.code).toBe(0);
    const entries = parseTokensFile(await readFile(file, 'utf8'), file);
    expect(entries).toEqual([
      {
        id: 'ci-acme',
        sha256: expect.stringMatching(/^[0-9a-f]{64}$/) as string,
        vendors: ['acme', 'acme-*'],
        admin: true,
        revoked: false,
        createdAt: '2026-11-22T06:00:00.000Z',
      },
    ]);
    expect(createTokenMatcher(entries)(created.stdout.trim())).toMatchObject({ ok: true, identity: { id: 'ci-acme', admin: true } });
    expect(created.stderr).toContain('shown only once');
  });

  it.each([
    ['no tokens file', ['create', '--vendor', 'acme'], '--tokens-file'],
    ['no vendor', ['create', '--tokens-file', '<file>'], 'at least one --vendor'],
    ['a bad vendor pattern', ['create', '--tokens-file', '<file>', '--vendor', 'ac/me'], 'not a vendor name'],
    ['a bad id', ['create', '--tokens-file', '<file>', '--vendor', 'acme', '--id', 'a b'], '--id'],
    ['revoking an unknown id', ['revoke', '--tokens-file', '<file>', '--id', 'nope'], 'no token with id nope'],
    ['no subcommand', [], 'Usage: metasync-primary token'],
  ])('exits 2 for %s, naming the problem, and leaves the file alone', async (_title, argv, problem) => {
    await run(['create', '--tokens-file', file, '--vendor', 'x', '--id', 'existing']);
    const before = await readFile(file, 'utf8');
    const result = await run(argv.map((arg) => (arg === '<file>' ? file : arg)));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(problem);
    expect(result.stdout).toBe('');
    expect(await readFile(file, 'utf8')).toBe(before);
  });

  it('refuses a second token with the same id', async () => {
    expect((await run(['create', '--tokens-file', file, '--vendor', 'acme', '--id', 'ci'])).code).toBe(0);
    const again = await run(['create', '--tokens-file', file, '--vendor', 'acme', '--id', 'ci']);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already exists');
  });

  it('refuses to touch a malformed tokens file', async () => {
    await writeFile(file, '{"tokens": 1}');
    const result = await run(['create', '--tokens-file', file, '--vendor', 'acme']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(file);
    expect(await readFile(file, 'utf8')).toBe('{"tokens": 1}');
  });

  it('revokes by id, keeping the entry, and lists without secrets', async () => {
    const secret = (await run(['create', '--tokens-file', file, '--vendor', '*', '--id', 'ops'])).stdout.trim();
    expect((await run(['revoke', '--tokens-file', file, '--id', 'ops'])).code).toBe(0);
    const listed = await run(['list', '--tokens-file', file]);
    expect(listed.stdout).toBe('ops\tvendors=*\tadmin=false\trevoked=true\tcreated=2026-11-22T06:00:00.000Z\n');
    expect(listed.stdout).not.toContain(secret);
    expect(createTokenMatcher(parseTokensFile(await readFile(file, 'utf8'), file))(secret)).toEqual({ ok: false, revokedId: 'ops' });
  });
});
