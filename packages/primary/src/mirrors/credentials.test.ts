import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '@metasync/shared/daemon';
import { openMirrorCredentials } from './credential-store.js';
import {
  createCredentialMatcher,
  issueCredential,
  MIRROR_CREDENTIALS_FILE,
  parseMirrorCredentials,
  revokeCredential,
  serializeMirrorCredentials,
} from './credentials.js';

const NOW = Date.UTC(2026, 11, 1);

describe('mirror credentials', () => {
  it('accepts a credential only for its own, unrevoked mirror id', () => {
    const eu = issueCredential([], { mirrorId: 'eu-1', nowMs: NOW });
    const us = issueCredential(eu.entries, { mirrorId: 'us-1', nowMs: NOW });
    const check = createCredentialMatcher(us.entries);
    expect(check('eu-1', eu.secret)).toBe('ok');
    expect(check('us-1', us.secret)).toBe('ok');
    expect(check('eu-1', us.secret)).toBe('other-mirror');
    expect(check('spoofed', eu.secret)).toBe('other-mirror');
    expect(check('eu-1', 'msm_made-up')).toBe('unknown');
    const revoked = revokeCredential(us.entries, { mirrorId: 'eu-1', nowMs: NOW });
    expect(revoked.outcome).toBe('revoked');
    expect(createCredentialMatcher(revoked.entries)('eu-1', eu.secret)).toBe('revoked');
  });

  it('stores only the sha256, replaces a mirror id on reissue, and revokes idempotently', () => {
    const first = issueCredential([], { mirrorId: 'eu-1', nowMs: NOW });
    expect(first.secret).toMatch(/^msm_[A-Za-z0-9_-]{43}$/);
    expect(serializeMirrorCredentials(first.entries)).not.toContain(first.secret);
    const second = issueCredential(first.entries, { mirrorId: 'eu-1', nowMs: NOW });
    expect(second.entries).toHaveLength(1);
    expect(createCredentialMatcher(second.entries)('eu-1', first.secret)).toBe('unknown');
    const once = revokeCredential(second.entries, { mirrorId: 'eu-1', nowMs: NOW });
    expect(revokeCredential(once.entries, { mirrorId: 'eu-1', nowMs: NOW }).outcome).toBe('already-revoked');
    expect(revokeCredential(once.entries, { mirrorId: 'never', nowMs: NOW }).outcome).toBe('unknown');
    expect(() => issueCredential([], { mirrorId: 'bad id', nowMs: NOW })).toThrow(/mirror id/);
  });

  it('refuses a malformed file naming the path and the entry', () => {
    expect(() => parseMirrorCredentials('{', '/d/f.json')).toThrow(/\/d\/f\.json is not valid JSON/);
    expect(() => parseMirrorCredentials('{"mirrors":[{"mirrorId":"a","sha256":"xyz"}]}', '/d/f.json')).toThrow(/mirrors\.0\.sha256/);
    const entry = { mirrorId: 'a', sha256: 'a'.repeat(64) };
    expect(() => parseMirrorCredentials(JSON.stringify({ mirrors: [entry, entry] }), '/d/f.json')).toThrow(/listed twice/);
  });
});

describe('the file-backed store', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('writes issues 0600 with digests only, follows edits made by others, and keeps the last good set on a malformed edit', async () => {
    dir = await mkdtemp(join(tmpdir(), 'metasync-credentials-'));
    const log = createLogger({ name: 'test', level: 'silent' });
    const store = await openMirrorCredentials({ dataDir: dir, pollMs: 0, watch: false, log });
    try {
      expect(store.isEnrolled('eu-1')).toBe(false);
      const { secret } = await store.issue('eu-1');
      expect(store.check('eu-1', secret)).toBe('ok');
      const path = join(dir, MIRROR_CREDENTIALS_FILE);
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect(await readFile(path, 'utf8')).not.toContain(secret);

      // Another process (the subcommand, an editor) revokes it: in force at the next reload.
      const revoked = revokeCredential(parseMirrorCredentials(await readFile(path, 'utf8'), path), { mirrorId: 'eu-1', nowMs: NOW });
      await writeFile(path, serializeMirrorCredentials(revoked.entries));
      await store.reload();
      expect(store.check('eu-1', secret)).toBe('revoked');
      expect(store.isEnrolled('eu-1')).toBe(false);

      const again = await store.issue('eu-1');
      expect(await store.revoke('us-1')).toBe('unknown');
      await writeFile(path, '{ not json');
      await store.reload();
      expect(store.check('eu-1', again.secret)).toBe('ok');
      // Its own writes start from the file as it is: a malformed one is refused, not overwritten.
      await expect(store.revoke('eu-1')).rejects.toMatchObject({ code: 'METASYNC_ERR_CONFIG_INVALID' });
      expect(store.check('eu-1', again.secret)).toBe('ok');
    } finally {
      store.close();
    }
  });
});
