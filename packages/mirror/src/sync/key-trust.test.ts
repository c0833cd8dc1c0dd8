import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  generateSigningKeyPem,
  signBody,
  signingKeyFromPem,
  verifyBody,
  type KeySet,
  type PublicKeyInfo,
  type SigningKey,
} from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createKeyTrust, type KeyTrust } from './key-trust.js';
import { pinnedKeysPath, readTrustedKeys } from './keys.js';

const logger = createLogger({ name: 'key-trust-test', level: 'silent' });
const info = (key: SigningKey, extra: Partial<PublicKeyInfo> = {}): PublicKeyInfo => ({
  keyId: key.keyId,
  publicKey: key.publicKey,
  active: true,
  ...extra,
});
const newKey = () => signingKeyFromPem(generateSigningKeyPem());

let dataDir: string;
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'key-trust-'));
  vi.useFakeTimers({ now: 1_000_000, toFake: ['Date'] });
});
afterEach(async () => {
  vi.useRealTimers();
  await rm(dataDir, { recursive: true, force: true });
});

/** A primary that rotated from `old` to `fresh` at 1_000_000 with a 60 s overlap; answers key sets signed by `signWith(signer)`. */
function rotatedPrimary(
  old: SigningKey,
  fresh: SigningKey,
  signWith: (signerId: string) => SigningKey | undefined = (id) => [old, fresh].find((k) => k.keyId === id),
) {
  const calls: string[] = [];
  const set: KeySet = {
    kind: 'keys',
    version: 1,
    issuedAt: 1_000_000,
    keys: [info(fresh), info(old, { active: false, notAfter: 1_060_000 })],
  };
  return {
    calls,
    async fetchKeySet(signerId: string) {
      calls.push(signerId);
      const signer = signWith(signerId);
      if (signer === undefined) return { status: 400, body: Buffer.from('{}'), signature: undefined };
      const body = Buffer.from(JSON.stringify(set));
      return { status: 200, body, signature: signBody(signer, body) };
    },
  };
}

function document(key: SigningKey): { body: Buffer; signature: string } {
  const body = Buffer.from('{"kind":"changes"}');
  return { body, signature: signBody(key, body) };
}

const check = (trust: KeyTrust, doc: { body: Buffer; signature: string }) =>
  trust.verifying((keys) => verifyBody(doc.body, doc.signature, { keys, nowMs: Date.now(), what: 'changes' }));

describe('key trust', () => {
  it('learns a rotated-in key from a key set the pinned key signed, persists it, and follows without a restart', async () => {
    const old = newKey();
    const fresh = newKey();
    const primary = rotatedPrimary(old, fresh);
    const trust = createKeyTrust({ dataDir, pinned: info(old), fetchKeySet: primary.fetchKeySet, logger });
    expect(await trust.load()).toEqual([info(old)]);

    expect((await check(trust, document(fresh))).keyId).toBe(fresh.keyId);
    expect(primary.calls).toEqual([old.keyId]);
    const stored = await readTrustedKeys(dataDir);
    expect(stored).toEqual({ version: 1, anchor: old.keyId, keys: [info(fresh), info(old, { active: false, notAfter: 1_060_000 })] });

    // A restart with the same --primary-key keeps the learned set.
    const restarted = createKeyTrust({ dataDir, pinned: info(old), fetchKeySet: primary.fetchKeySet, logger });
    expect((await restarted.load())?.map((k) => k.keyId)).toEqual([fresh.keyId, old.keyId]);
  });

  it('refuses a key set signed by a key it does not trust, and does not learn the forger’s key', async () => {
    const old = newKey();
    const forger = newKey();
    const primary = rotatedPrimary(old, forger, () => forger);
    const trust = createKeyTrust({ dataDir, pinned: info(old), fetchKeySet: primary.fetchKeySet, logger });
    await expect(check(trust, document(forger))).rejects.toMatchObject({ code: 'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY' });
    expect(primary.calls).toEqual([old.keyId]);
    expect(await readFile(pinnedKeysPath(dataDir), 'utf8')).not.toContain(forger.keyId);
    expect(await trust.load()).toEqual([info(old)]);
  });

  it('refuses a document signed by the retired key after the overlap, without asking the primary again', async () => {
    const old = newKey();
    const fresh = newKey();
    const primary = rotatedPrimary(old, fresh);
    const trust = createKeyTrust({ dataDir, pinned: info(old), fetchKeySet: primary.fetchKeySet, logger });
    await check(trust, document(fresh));
    expect((await check(trust, document(old))).keyId).toBe(old.keyId);

    vi.setSystemTime(1_060_001);
    await expect(check(trust, document(old))).rejects.toMatchObject({
      code: 'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY',
      message: expect.stringContaining('retired since') as string,
    });
    expect((await check(trust, document(fresh))).keyId).toBe(fresh.keyId);
    expect(primary.calls).toEqual([old.keyId]);
  });

  it('cannot learn through a key already past its overlap (the mirror slept through the rotation)', async () => {
    const old = newKey();
    const fresh = newKey();
    const primary = rotatedPrimary(old, fresh);
    const trust = createKeyTrust({ dataDir, pinned: info(old), fetchKeySet: primary.fetchKeySet, logger });
    await check(trust, document(fresh));
    const later = newKey();
    vi.setSystemTime(1_060_001);
    // Only `fresh` may endorse now; a set "signed" by the retired key is not even asked for.
    const next = rotatedPrimary(fresh, later, (id) => (id === old.keyId ? old : undefined));
    const again = createKeyTrust({ dataDir, pinned: info(old), fetchKeySet: next.fetchKeySet, logger });
    await expect(check(again, document(later))).rejects.toMatchObject({ code: 'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY' });
    expect(next.calls).toEqual([fresh.keyId]);
  });

  it('once it follows the new key, never lets the retired key (still within its overlap) bring in another key', async () => {
    const old = newKey();
    const fresh = newKey();
    const intruder = newKey();
    const calls: string[] = [];
    let learned = false;
    const trust = createKeyTrust({
      dataDir,
      pinned: info(old),
      logger,
      async fetchKeySet(signerId) {
        calls.push(signerId);
        // First the genuine rotation (signed by old); then a leaked `old` announcing an intruder, while `fresh` is refused on the path.
        const set: KeySet = learned
          ? { kind: 'keys', version: 2, issuedAt: 1_000_000, keys: [info(intruder), info(old, { active: false, notAfter: 1_060_000 })] }
          : { kind: 'keys', version: 1, issuedAt: 1_000_000, keys: [info(fresh), info(old, { active: false, notAfter: 1_060_000 })] };
        if (learned && signerId !== old.keyId) return { status: 400, body: Buffer.from('{}'), signature: undefined };
        const body = Buffer.from(JSON.stringify(set));
        return { status: 200, body, signature: signBody(old, body) };
      },
    });
    await check(trust, document(fresh));
    learned = true;
    await expect(check(trust, document(intruder))).rejects.toMatchObject({ code: 'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY' });
    expect(calls).toEqual([old.keyId, fresh.keyId]);
    expect(await readFile(pinnedKeysPath(dataDir), 'utf8')).not.toContain(intruder.keyId);
  });

  it('asks the primary at most once per interval while forged documents keep coming', async () => {
    const old = newKey();
    const forger = newKey();
    const primary = rotatedPrimary(old, old);
    const trust = createKeyTrust({ dataDir, pinned: info(old), fetchKeySet: primary.fetchKeySet, logger, minLearnIntervalMs: 1_000 });
    for (let i = 0; i < 5; i++)
      await expect(check(trust, document(forger))).rejects.toMatchObject({ code: 'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY' });
    expect(primary.calls).toHaveLength(1);
    vi.setSystemTime(Date.now() + 1_000);
    await expect(check(trust, document(forger))).rejects.toMatchObject({ code: 'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY' });
    expect(primary.calls).toHaveLength(2);
  });

  it('asks at once about a key id it has not asked about yet, even right after a forged one (the real rotation is not delayed)', async () => {
    const old = newKey();
    const fresh = newKey();
    const forger = newKey();
    // Before the rotation the primary's set holds only `old`; the forged document comes first.
    const beforeCalls: string[] = [];
    const beforeBody = Buffer.from(JSON.stringify({ kind: 'keys', version: 0, issuedAt: 1_000_000, keys: [info(old)] } satisfies KeySet));
    const after = rotatedPrimary(old, fresh);
    let rotated = false;
    const fetchKeySet = async (signerId: string) => {
      if (rotated) return after.fetchKeySet(signerId);
      beforeCalls.push(signerId);
      return { status: 200, body: beforeBody, signature: signBody(old, beforeBody) };
    };
    const trust = createKeyTrust({ dataDir, pinned: info(old), fetchKeySet, logger, minLearnIntervalMs: 1_000 });
    await expect(check(trust, document(forger))).rejects.toMatchObject({ code: 'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY' });
    rotated = true;
    expect((await check(trust, document(fresh))).keyId).toBe(fresh.keyId);
    expect([beforeCalls, after.calls]).toEqual([[old.keyId], [old.keyId]]);
  });

  it('starts over from --primary-key when the stored set does not contain it (the operator re-pinned)', async () => {
    const old = newKey();
    const fresh = newKey();
    const first = createKeyTrust({ dataDir, pinned: info(old), fetchKeySet: rotatedPrimary(old, fresh).fetchKeySet, logger });
    await check(first, document(fresh));
    const replacement = newKey();
    const repinned = createKeyTrust({ dataDir, pinned: info(replacement), fetchKeySet: rotatedPrimary(old, fresh).fetchKeySet, logger });
    expect(await repinned.load()).toEqual([info(replacement)]);
    expect(await readTrustedKeys(dataDir)).toEqual({ version: 0, anchor: replacement.keyId, keys: [info(replacement)] });
  });
});
