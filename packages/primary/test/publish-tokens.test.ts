import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@metasync/shared/daemon';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/helpers/wait-for.js';
import { openPublishAuth, type PublishAuth } from '../src/publish/auth.js';
import { runTokenCommand } from '../src/publish/token-cli.js';
import { startTestPrimary, TEST_TOKEN, type TestPrimary } from './primary-fixture.js';

const log = createLogger({ name: 'test-tokens', level: 'silent' });
const versionsBody = (name: string) => ({
  versions: [{ version: '1.0.0', dist: { type: 'zip', url: `https://example.org/${name}.zip`, reference: 'r1' } }],
});

let dir: string;
let tokensFile: string;
let primary: TestPrimary | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-tokens-'));
  tokensFile = join(dir, 'tokens.json');
});

afterEach(async () => {
  await primary?.close();
  primary = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** `metasync-primary token ...` in process; returns stdout (the secret for create). */
async function tokenCli(...argv: string[]): Promise<string> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runTokenCommand(
    argv,
    {},
    { stdout: (t) => out.push(t), stderr: (t) => err.push(t), nowMs: () => Date.parse('2026-11-22T06:00:00Z') },
  );
  if (code !== 0) throw new Error(`token ${argv.join(' ')} exited ${code}: ${err.join('')}`);
  return out.join('').trim();
}

async function start(options: { pollMs?: number; watch?: boolean } = {}): Promise<{ primary: TestPrimary; auth: PublishAuth }> {
  const auth = await openPublishAuth({
    staticTokens: [TEST_TOKEN],
    tokensFile,
    pollMs: options.pollMs ?? 200,
    ...(options.watch === undefined ? {} : { watch: options.watch }),
    log,
  });
  primary = await startTestPrimary({ publishAuth: auth });
  return { primary, auth };
}

const put = (p: TestPrimary, name: string, token: string) =>
  p.app.inject({
    method: 'PUT',
    url: `/api/v1/packages/${name}`,
    headers: { authorization: `Bearer ${token}` },
    payload: versionsBody(name),
  });

describe('scoped publish tokens', () => {
  it('publishes inside the scope and refuses outside it with 403 naming the package and token id, before changing anything', async () => {
    const secret = await tokenCli('create', '--tokens-file', tokensFile, '--id', 'ci-acme', '--vendor', 'acme', '--vendor', 'acme-*');
    const { primary: p } = await start();
    expect((await put(p, 'acme/foo', secret)).statusCode).toBe(200);
    expect((await put(p, 'acme-labs/bar', secret)).statusCode).toBe(200);
    const seq = p.core.publisher.headSeq();
    const refused = await put(p, 'other/foo', secret);
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({
      code: 'METASYNC_ERR_AUTH_SCOPE',
      package: 'other/foo',
      tokenId: 'ci-acme',
      field: 'authorization',
      rule: 'token-scope',
    });
    const deleteRefused = await p.app.inject({
      method: 'DELETE',
      url: '/api/v1/packages/acmex/foo/versions/1.0.0',
      headers: { authorization: `Bearer ${secret}` },
    });
    expect(deleteRefused.statusCode).toBe(403);
    expect(p.core.publisher.headSeq()).toBe(seq);
    expect(p.core.publisher.getEntry('p2/other/foo.json')).toBeUndefined();
  });

  it('keeps the METASYNC_PUBLISH_TOKEN token as an all-vendor admin token next to the file', async () => {
    await tokenCli('create', '--tokens-file', tokensFile, '--id', 'ci-acme', '--vendor', 'acme');
    const { primary: p } = await start();
    expect((await put(p, 'anyone/foo', TEST_TOKEN)).statusCode).toBe(200);
    expect(
      (await p.app.inject({ method: 'POST', url: '/admin/snapshot', headers: { authorization: `Bearer ${TEST_TOKEN}` } })).statusCode,
    ).toBe(200);
  });

  it('lets only admin tokens call admin routes', async () => {
    const plain = await tokenCli('create', '--tokens-file', tokensFile, '--id', 'ci', '--vendor', '*');
    const admin = await tokenCli('create', '--tokens-file', tokensFile, '--id', 'ops', '--vendor', 'acme', '--admin');
    const { primary: p } = await start();
    const refused = await p.app.inject({ method: 'POST', url: '/admin/snapshot', headers: { authorization: `Bearer ${plain}` } });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: 'METASYNC_ERR_AUTH_SCOPE', tokenId: 'ci' });
    expect((await p.app.inject({ method: 'POST', url: '/admin/snapshot', headers: { authorization: `Bearer ${admin}` } })).statusCode).toBe(
      200,
    );
  });

  it('stores only the sha256 of a minted secret, in a file readable by its owner only', async () => {
    const secret = await tokenCli('create', '--tokens-file', tokensFile, '--id', 'ci', '--vendor', 'acme');
    const text = await readFile(tokensFile, 'utf8');
    expect(text).not.toContain(secret);
    expect((await stat(tokensFile)).mode & 0o777).toBe(0o600);
    expect(await tokenCli('list', '--tokens-file', tokensFile)).toContain('ci\tvendors=acme\tadmin=false\trevoked=false');
  });
});

describe('tokens file reload without a restart', () => {
  it('refuses a token with 401 once it is revoked in the file while the primary runs (watch)', async () => {
    const secret = await tokenCli('create', '--tokens-file', tokensFile, '--id', 'ci-acme', '--vendor', 'acme');
    const { primary: p } = await start({ pollMs: 0 });
    expect((await put(p, 'acme/foo', secret)).statusCode).toBe(200);
    await tokenCli('revoke', '--tokens-file', tokensFile, '--id', 'ci-acme');
    const refused = await waitFor(
      async () => {
        const res = await put(p, 'acme/foo', secret);
        return res.statusCode === 401 ? res : undefined;
      },
      { timeoutMs: 5_000, intervalMs: 20, what: 'the revoked token to be refused' },
    );
    expect(refused.json()).toMatchObject({ code: 'METASYNC_ERR_AUTH_INVALID' });
  });

  it('picks up a new token and a removal through the periodic stat alone (no watch)', async () => {
    const first = await tokenCli('create', '--tokens-file', tokensFile, '--id', 'first', '--vendor', 'acme');
    const { primary: p, auth } = await start({ pollMs: 50, watch: false });
    const second = await tokenCli('create', '--tokens-file', tokensFile, '--id', 'second', '--vendor', 'acme');
    await waitFor(async () => (await put(p, 'acme/foo', second)).statusCode === 200, {
      timeoutMs: 5_000,
      intervalMs: 20,
      what: 'the new token to be accepted',
    });
    // Removing the entry (instead of revoking it) works too.
    const entries = JSON.parse(await readFile(tokensFile, 'utf8')) as { tokens: Array<{ id: string }> };
    await writeFile(tokensFile, JSON.stringify({ tokens: entries.tokens.filter((t) => t.id !== 'first') }));
    await waitFor(async () => (await put(p, 'acme/foo', first)).statusCode === 401, {
      timeoutMs: 5_000,
      intervalMs: 20,
      what: 'the removed token to be refused',
    });
    expect(auth.status()).toMatchObject({ activeTokens: 2, loads: 3, lastError: undefined });
  });

  it('keeps the last good set when the file becomes malformed, and takes the next good one', async () => {
    const secret = await tokenCli('create', '--tokens-file', tokensFile, '--id', 'ci-acme', '--vendor', 'acme');
    const { primary: p, auth } = await start({ pollMs: 50 });
    const good = await readFile(tokensFile, 'utf8');
    await writeFile(tokensFile, good.replace('"vendors"', '"vendors": 1, "x"'));
    await waitFor(() => auth.status().lastError, { timeoutMs: 5_000, what: 'the malformed file to be refused' });
    expect(auth.status().lastError).toContain(tokensFile);
    expect((await put(p, 'acme/foo', secret)).statusCode).toBe(200);
    await writeFile(tokensFile, 'not json at all');
    await waitFor(() => auth.status().lastError?.includes('not valid JSON'), { timeoutMs: 5_000, what: 'the non-JSON file to be refused' });
    expect((await put(p, 'acme/bar', secret)).statusCode).toBe(200);
    await rm(tokensFile);
    await waitFor(() => auth.status().lastError?.includes('does not exist'), { timeoutMs: 5_000, what: 'the missing file to be noticed' });
    expect((await put(p, 'acme/baz', secret)).statusCode).toBe(200);
    // A good file again: the revocation in it takes effect.
    await writeFile(tokensFile, good.replace('"revoked": false', '"revoked": true'));
    await waitFor(async () => (await put(p, 'acme/foo', secret)).statusCode === 401, {
      timeoutMs: 5_000,
      intervalMs: 20,
      what: 'the good file to be taken',
    });
    expect(auth.status().lastError).toBeUndefined();
  });

  it('refuses to start on a malformed tokens file', async () => {
    await writeFile(tokensFile, '{"tokens": [{"id": "x"}]}');
    await expect(openPublishAuth({ staticTokens: [], tokensFile, log })).rejects.toMatchObject({ code: 'METASYNC_ERR_CONFIG_INVALID' });
    await expect(openPublishAuth({ staticTokens: [], tokensFile: join(dir, 'missing.json'), log })).rejects.toMatchObject({
      code: 'METASYNC_ERR_CONFIG_INVALID',
    });
  });
});
