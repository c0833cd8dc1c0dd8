import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateSigningKeyPem, hasErrno, metasyncError, signingKeyFromPem, type SigningKey } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import { writeFileAtomic } from '@metasync/shared/fs';

export const GENERATED_KEY_FILE = 'signing-key.pem';

/**
 * The Ed25519 key that signs every generation. With `keyFile` it is read from
 * there; otherwise a key is created once in the data dir (mode 0600) and reused,
 * with one warning per start, because a key beside the data is lost with it.
 */
export async function loadSigningKey(options: { keyFile: string | undefined; dataDir: string; log: Logger }): Promise<SigningKey> {
  if (options.keyFile !== undefined) return signingKeyFromPem(await readPem(options.keyFile));
  const path = join(options.dataDir, GENERATED_KEY_FILE);
  let pem: string;
  let created = false;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    if (!hasErrno(err, 'ENOENT')) throw err;
    pem = generateSigningKeyPem();
    await writeFileAtomic(path, pem, { mode: 0o600 });
    created = true;
  }
  const key = signingKeyFromPem(pem);
  options.log.warn({ path, keyId: key.keyId, created }, 'no --signing-key-file given: signing with a key kept in the data dir');
  return key;
}

async function readPem(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `cannot read signing key file ${path}`, { path }, err);
  }
}
