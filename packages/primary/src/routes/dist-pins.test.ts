import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { distPinsPathFor } from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../app.js';
import { openPrimaryCore, type PrimaryCore } from '../data-dir.js';

const log = createLogger({ name: 'test', level: 'silent' });
const ADMIN = { authorization: 'Bearer admin-token' };
let dir: string;
let core: PrimaryCore;

const open = () =>
  openPrimaryCore({
    dataDir: dir,
    signingKeyFile: undefined,
    keepGenerations: 1000,
    snapshotEveryGenerations: 1_000_000,
    snapshotIntervalMs: 3_600_000,
    log,
  });

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-dist-pins-'));
  core = await open();
});
afterEach(async () => {
  await core.close();
  await rm(dir, { recursive: true, force: true });
});

const report = (sha: string) => ({
  package: 'acme/foo',
  reference: 'ab12',
  type: 'zip',
  sha256: sha.repeat(64),
  size: 3,
  source: 'http://m1.test',
});

describe('POST /sync/v1/dist-pins', () => {
  it('takes pins only with the mirror credential, keeps the first, never serves them, and keeps them across a restart', async () => {
    const { app } = await buildApp({ core, logger: log, publishTokens: ['admin-token'], maxBodyBytes: 64 * 1024, heartbeatMs: 15_000 });
    try {
      await app.inject({
        method: 'PUT',
        url: '/api/v1/packages/acme/foo',
        headers: ADMIN,
        payload: { versions: [{ version: '1.0.0', dist: { type: 'zip', url: 'https://codehost.test/a.zip', reference: 'ab12' } }] },
      });
      const enrolled = await app.inject({ method: 'POST', url: '/admin/mirrors/m1/credential', headers: ADMIN });
      const { credential } = enrolled.json<{ credential: string }>();
      const post = (headers: Record<string, string>, sha: string) =>
        app.inject({ method: 'POST', url: '/sync/v1/dist-pins', headers: { 'x-metasync-mirror': 'm1', ...headers }, payload: report(sha) });

      expect((await post({}, 'a')).statusCode).toBe(401);
      expect((await post({ authorization: 'Bearer wrong' }, 'a')).statusCode).toBe(403);
      expect(core.publisher.getEntry(distPinsPathFor('acme/foo'))).toBeUndefined();

      const first = await post({ authorization: `Bearer ${credential}` }, 'a');
      expect(first.statusCode).toBe(200);
      expect(first.json()).toMatchObject({ created: true, pin: { sha256: 'a'.repeat(64), source: 'http://m1.test' } });
      const second = await post({ authorization: `Bearer ${credential}` }, 'b');
      expect(second.json()).toMatchObject({ created: false, pin: { sha256: 'a'.repeat(64) } });
      expect((await app.inject({ method: 'GET', url: `/${distPinsPathFor('acme/foo')}` })).statusCode).toBe(404);
    } finally {
      await app.close();
    }
    // Reopening deletes reserved paths left by older versions, but not the pins the pins source wrote.
    await core.close();
    core = await open();
    const entry = core.publisher.getEntry(distPinsPathFor('acme/foo'));
    expect(entry?.origin).toBe('pins');
    expect(JSON.parse((await core.publisher.readObject(entry!.sha256)).toString())).toMatchObject({
      pins: { 'ab12.zip': { sha256: 'a'.repeat(64) } },
    });
  });

  it('refuses pins content from any other source', async () => {
    const err = await core.publisher
      .submit([{ path: distPinsPathFor('acme/foo'), content: Buffer.from('{}') }], 'api')
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'METASYNC_ERR_PATH_RESERVED' });
  });
});
