import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { hasErrno, keyIdOf, metasyncError, publicKeyInfoSchema, writeFileAtomic, type PublicKeyInfo } from '@metasync/shared';

/**
 * Which primary keys the mirror trusts (invariant 8).
 *   --primary-key <keyId:base64url>  pins one key; nothing else is trusted.
 *   otherwise: trust on first use. The keys the primary lists in `state` are
 *   pinned in `<data>/primary-keys.json` the first time and never replaced by
 *   what a later (possibly impostor) primary says; the caller warns once.
 * Rotating the primary's key therefore needs the new key pinned on mirrors
 * (or the file removed), by design: a mirror never widens its own trust.
 */
const pinnedFileSchema = z.object({ keys: z.array(publicKeyInfoSchema).min(1), pinnedAt: z.number() });

export function parsePinnedKey(value: string): PublicKeyInfo {
  const match = /^([0-9a-f]{16}):([A-Za-z0-9_-]{43})$/.exec(value);
  if (match === null) {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `--primary-key must be <16 hex keyId>:<43 char base64url key>, got ${JSON.stringify(value.slice(0, 80))}`);
  }
  const [, keyId, publicKey] = match as unknown as [string, string, string];
  if (keyIdOf(publicKey) !== keyId) {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `--primary-key id ${keyId} does not match its key (expected ${keyIdOf(publicKey)})`, { keyId });
  }
  return { keyId, publicKey, active: true };
}

export function pinnedKeysPath(dataDir: string): string {
  return join(dataDir, 'primary-keys.json');
}

export async function readPinnedKeys(dataDir: string): Promise<PublicKeyInfo[] | undefined> {
  let text: string;
  try {
    text = await readFile(pinnedKeysPath(dataDir), 'utf8');
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  const parsed = pinnedFileSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `pinned key file ${pinnedKeysPath(dataDir)} is malformed: ${parsed.error.message}`, { path: pinnedKeysPath(dataDir) });
  }
  return parsed.data.keys;
}

export async function pinKeys(dataDir: string, keys: readonly PublicKeyInfo[]): Promise<void> {
  for (const key of keys) {
    if (keyIdOf(key.publicKey) !== key.keyId) {
      throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `primary listed key ${key.keyId} whose id does not match its key`, { keyId: key.keyId });
    }
  }
  await writeFileAtomic(pinnedKeysPath(dataDir), JSON.stringify({ keys, pinnedAt: Date.now() }, null, 2) + '\n');
}
