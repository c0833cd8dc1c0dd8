import { join } from 'node:path';
import { z } from 'zod';
import { keyIdOf, metasyncError, publicKeyInfoSchema, type PublicKeyInfo } from '@metasync/shared';
import { readJsonFile, writeFileAtomic } from '@metasync/shared/fs';
import type { TrustedKeys } from './key-set.js';

/**
 * Which primary keys the mirror trusts (invariant 8), kept in
 * `<data>/primary-keys.json` ({keys, version, anchor, pinnedAt}).
 *   --primary-key <keyId:base64url>  pins one key; the file grows from it.
 *   otherwise: trust on first use. The keys the primary lists in `state` are
 *   pinned the first time; the caller warns once.
 * Either way the set then follows the primary's key rotations, but only
 * through key sets signed by a key already trusted (key-trust.ts): a mirror
 * never widens its trust on what the network says alone.
 */
const pinnedFileSchema = z.object({
  keys: z.array(publicKeyInfoSchema).min(1),
  pinnedAt: z.number(),
  /** The primary's key-set version the keys are at (absent in files written before key rotation). */
  version: z.number().int().nonnegative().optional(),
  /** The --primary-key id the set grew from. */
  anchor: z.string().optional(),
});

export function parsePinnedKey(value: string): PublicKeyInfo {
  const match = /^([0-9a-f]{16}):([A-Za-z0-9_-]{43})$/.exec(value);
  if (match === null) {
    throw metasyncError(
      'METASYNC_ERR_CONFIG_INVALID',
      `--primary-key must be <16 hex keyId>:<43 char base64url key>, got ${JSON.stringify(value.slice(0, 80))}`,
    );
  }
  const [, keyId, publicKey] = match as unknown as [string, string, string];
  if (keyIdOf(publicKey) !== keyId) {
    throw metasyncError(
      'METASYNC_ERR_CONFIG_INVALID',
      `--primary-key id ${keyId} does not match its key (expected ${keyIdOf(publicKey)})`,
      { keyId },
    );
  }
  return { keyId, publicKey, active: true };
}

export function pinnedKeysPath(dataDir: string): string {
  return join(dataDir, 'primary-keys.json');
}

export async function readPinnedKeys(dataDir: string): Promise<PublicKeyInfo[] | undefined> {
  return (await readTrustedKeys(dataDir))?.keys;
}

export async function readTrustedKeys(dataDir: string): Promise<TrustedKeys | undefined> {
  const parsed = await readJsonFile(pinnedKeysPath(dataDir), pinnedFileSchema, 'pinned key file');
  if (parsed === undefined) return undefined;
  return { version: parsed.version ?? 0, keys: parsed.keys, anchor: parsed.anchor };
}

export async function pinKeys(dataDir: string, keys: readonly PublicKeyInfo[]): Promise<void> {
  await writeTrustedKeys(dataDir, { version: 0, keys: [...keys] });
}

export async function writeTrustedKeys(dataDir: string, trusted: TrustedKeys): Promise<void> {
  for (const key of trusted.keys) {
    if (keyIdOf(key.publicKey) !== key.keyId) {
      throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `primary listed key ${key.keyId} whose id does not match its key`, {
        keyId: key.keyId,
      });
    }
  }
  const file = {
    keys: trusted.keys,
    version: trusted.version,
    ...(trusted.anchor === undefined ? {} : { anchor: trusted.anchor }),
    pinnedAt: Date.now(),
  };
  await writeFileAtomic(pinnedKeysPath(dataDir), JSON.stringify(file, null, 2) + '\n');
}
