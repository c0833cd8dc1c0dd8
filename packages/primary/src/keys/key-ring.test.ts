import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKeyPem, signingKeyFromPem } from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KEY_RING_FILE, openKeyRing, type KeyRing } from './key-ring.js';
import { GENERATED_KEY_FILE } from './signing-key.js';

const log = createLogger({ name: 'key-ring-test', level: 'silent' });
let dataDir: string;
const rings: KeyRing[] = [];

async function open(keyFile?: string): Promise<KeyRing> {
  const ring = await openKeyRing({ dataDir, keyFile, log });
  rings.push(ring);
  return ring;
}

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'key-ring-'));
  vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z'), toFake: ['setTimeout', 'clearTimeout', 'Date'] });
});

afterEach(async () => {
  for (const ring of rings.splice(0)) ring.close();
  vi.useRealTimers();
  await rm(dataDir, { recursive: true, force: true });
});

describe('key ring', () => {
  it('signs with the new key from the moment of rotation and lists the old one until its overlap ends', async () => {
    const ring = await open();
    const old = ring.active();
    expect(ring.version()).toBe(0);
    const result = await ring.rotate({ overlapMs: 60_000 });
    const rotatedAt = Date.now();
    expect(ring.active().keyId).toBe(result.active.keyId);
    expect(ring.active().keyId).not.toBe(old.keyId);
    expect(result).toMatchObject({ version: 1, retired: [{ keyId: old.keyId, notAfter: rotatedAt + 60_000 }] });
    expect(ring.publicKeys()).toEqual([
      { keyId: result.active.keyId, publicKey: result.active.publicKey, active: true },
      { keyId: old.keyId, publicKey: old.publicKey, active: false, notAfter: rotatedAt + 60_000 },
    ]);
    expect(ring.signer(old.keyId)?.keyId).toBe(old.keyId);

    await vi.advanceTimersByTimeAsync(59_000);
    expect(ring.publicKeys().map((k) => k.keyId)).toEqual([result.active.keyId, old.keyId]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(ring.publicKeys().map((k) => k.keyId)).toEqual([result.active.keyId]);
    expect(ring.signer(old.keyId)).toBeUndefined();
    // The retired private key is erased from disk, not only forgotten in memory.
    await vi.waitFor(async () => expect(await readFile(join(dataDir, KEY_RING_FILE), 'utf8')).not.toContain(old.keyId));
  });

  it('keeps the key set across a restart, and a restart after the overlap drops the retired key', async () => {
    const first = await open();
    const old = first.active();
    const { active } = await first.rotate({ overlapMs: 10_000 });
    first.close();
    expect((await stat(join(dataDir, KEY_RING_FILE))).mode & 0o777).toBe(0o600);
    // The generated legacy key now lives in the key set only.
    await expect(stat(join(dataDir, GENERATED_KEY_FILE))).rejects.toMatchObject({ code: 'ENOENT' });

    // A crash between writing the key set and removing the legacy file leaves it behind: the next start removes it.
    await writeFile(join(dataDir, GENERATED_KEY_FILE), generateSigningKeyPem(), { mode: 0o600 });
    const second = await open();
    await expect(stat(join(dataDir, GENERATED_KEY_FILE))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(second.active().keyId).toBe(active.keyId);
    expect(second.version()).toBe(1);
    expect(second.publicKeys().map((k) => k.keyId)).toEqual([active.keyId, old.keyId]);
    second.close();

    vi.setSystemTime(Date.now() + 10_001);
    const third = await open();
    expect(third.publicKeys().map((k) => k.keyId)).toEqual([active.keyId]);
    expect(await readFile(join(dataDir, KEY_RING_FILE), 'utf8')).not.toContain(old.keyId);
  });

  it('takes the --signing-key-file key from that file only, and follows rotations made after it', async () => {
    const pem = generateSigningKeyPem();
    const keyFile = join(dataDir, 'operator.pem');
    await writeFile(keyFile, pem, { mode: 0o600 });
    const fileKey = signingKeyFromPem(pem);
    const ring = await open(keyFile);
    expect(ring.active().keyId).toBe(fileKey.keyId);
    const { active } = await ring.rotate({ overlapMs: 5_000 });
    expect(await readFile(join(dataDir, KEY_RING_FILE), 'utf8')).not.toContain(pem.split('\n')[1]);
    ring.close();

    const again = await open(keyFile);
    expect(again.active().keyId).toBe(active.keyId);
    expect(again.signer(fileKey.keyId)?.keyId).toBe(fileKey.keyId);
  });

  it('starts a new key set when --signing-key-file names a key outside the stored set', async () => {
    const ring = await open();
    await ring.rotate({ overlapMs: 5_000 });
    ring.close();
    const keyFile = join(dataDir, 'replacement.pem');
    const pem = generateSigningKeyPem();
    await writeFile(keyFile, pem);
    const replaced = await open(keyFile);
    expect(replaced.active().keyId).toBe(signingKeyFromPem(pem).keyId);
    expect(replaced.publicKeys()).toHaveLength(1);
    expect(replaced.version()).toBe(0);
  });

  it('refuses an overlap that is negative, fractional or beyond 90 days, and keeps the active key', async () => {
    const ring = await open();
    const before = ring.active().keyId;
    for (const overlapMs of [-1, 1.5, 91 * 24 * 3600 * 1000]) {
      await expect(ring.rotate({ overlapMs })).rejects.toMatchObject({ code: 'METASYNC_ERR_REQUEST_INVALID' });
    }
    expect(ring.active().keyId).toBe(before);
    expect(ring.version()).toBe(0);
  });

  it('with overlap 0 drops the old key at once', async () => {
    const ring = await open();
    const old = ring.active();
    const result = await ring.rotate({ overlapMs: 0 });
    expect(result.retired).toEqual([]);
    expect(ring.publicKeys().map((k) => k.keyId)).toEqual([result.active.keyId]);
    expect(ring.signer(old.keyId)).toBeUndefined();
  });
});
