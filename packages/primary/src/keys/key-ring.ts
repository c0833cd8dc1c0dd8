import {
  MAX_KEY_OVERLAP_MS,
  generateSigningKeyPem,
  hasErrno,
  metasyncError,
  signingKeyFromPem,
  type PublicKeyInfo,
  type SigningKey,
} from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import { readJsonFile, writeFileAtomic } from '@metasync/shared/fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { GENERATED_KEY_FILE, loadSigningKey } from './signing-key.js';

/**
 * The primary's signing keys: one active key that signs everything from the
 * moment it is rotated in, and retired keys kept for their overlap period
 * (listed with `notAfter`, still able to endorse the key set for mirrors that
 * only know them), then dropped, private key included.
 *
 *   rotate(overlap) ->  new key: active          old key: notAfter = now + overlap
 *                       version + 1              -> dropped (and erased) at notAfter
 *
 * Persisted in `<data>/signing-keys.json` (0600, private keys inline) once a
 * rotation happened, so a restart keeps the set. The key of --signing-key-file
 * is never copied there: the ring names it by id and takes it from the file.
 * A ring that does not contain the configured key file's key is stale (the
 * operator replaced the key outside a rotation) and starts over from that key.
 */
export const KEY_RING_FILE = 'signing-keys.json';
export const DEFAULT_KEY_OVERLAP_MS = 24 * 60 * 60 * 1000;

export interface KeyRing {
  /** The key that signs new documents. */
  active(): SigningKey;
  /** Grows by one per rotation. */
  version(): number;
  /** The active key first, then retired keys still within their overlap. */
  publicKeys(): PublicKeyInfo[];
  /** A key this primary can still sign with (active, or retired and within its overlap). */
  signer(keyId: string): SigningKey | undefined;
  rotate(options: { overlapMs: number }): Promise<RotationResult>;
  /** Stops the timer that drops retired keys. */
  close(): void;
}

export interface RotationResult {
  version: number;
  active: PublicKeyInfo;
  retired: { keyId: string; notAfter: number }[];
}

interface Entry {
  key: SigningKey | undefined;
  keyId: string;
  publicKey: string;
  createdAt: number;
  notAfter: number | undefined;
  /** False for the --signing-key-file key: its private key stays in the operator's file. */
  storePem: boolean;
}

const ringFileSchema = z.object({
  version: z.number().int().nonnegative(),
  keys: z
    .array(
      z.object({
        keyId: z.string().regex(/^[0-9a-f]{16}$/),
        publicKey: z.string(),
        createdAt: z.number().int().nonnegative(),
        notAfter: z.number().int().nonnegative().optional(),
        pem: z.string().optional(),
      }),
    )
    .min(1),
});

/** setTimeout's ceiling; a later expiry re-arms the timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export async function openKeyRing(options: {
  dataDir: string;
  keyFile: string | undefined;
  log: Logger;
  now?: () => number;
}): Promise<KeyRing> {
  const { dataDir, log } = options;
  const now = options.now ?? Date.now;
  const path = join(dataDir, KEY_RING_FILE);
  const stored = await readRingFile(path);
  let version = 0;
  let entries: Entry[];
  let legacyPem = false;
  if (options.keyFile !== undefined) {
    const base = await loadSigningKey({ keyFile: options.keyFile, dataDir, log });
    const fromFile = stored?.keys.find((entry) => entry.keyId === base.keyId);
    if (stored !== undefined && fromFile !== undefined) {
      version = stored.version;
      entries = stored.keys.map((entry) =>
        entry.keyId === base.keyId ? { ...entryFromFile(entry, path), key: base, storePem: false } : entryFromFile(entry, path),
      );
    } else {
      if (stored !== undefined)
        log.warn({ path, keyId: base.keyId }, 'signing key file is not in the stored key set: starting a new key set');
      entries = [{ key: base, keyId: base.keyId, publicKey: base.publicKey, createdAt: now(), notAfter: undefined, storePem: false }];
    }
  } else if (stored !== undefined) {
    version = stored.version;
    entries = stored.keys.map((entry) => entryFromFile(entry, path));
    // Left behind by a crash between the first rotation's write and its cleanup.
    await removeLegacyPem(join(dataDir, GENERATED_KEY_FILE));
  } else {
    const base = await loadSigningKey({ keyFile: undefined, dataDir, log });
    entries = [{ key: base, keyId: base.keyId, publicKey: base.publicKey, createdAt: now(), notAfter: undefined, storePem: true }];
    legacyPem = true;
  }
  const activeEntry = entries.find((entry) => entry.notAfter === undefined);
  if (activeEntry?.key === undefined) {
    throw metasyncError(
      'METASYNC_ERR_CONFIG_INVALID',
      `key set ${path} has no usable active key (its key came from --signing-key-file: pass that file again)`,
      { path },
    );
  }
  let timer: NodeJS.Timeout | undefined;
  let rotating: Promise<unknown> = Promise.resolve();

  async function persist(next: Entry[], nextVersion: number): Promise<void> {
    const keys = next.map((entry) => ({
      keyId: entry.keyId,
      publicKey: entry.publicKey,
      createdAt: entry.createdAt,
      ...(entry.notAfter === undefined ? {} : { notAfter: entry.notAfter }),
      ...(entry.storePem && entry.key !== undefined
        ? { pem: entry.key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() }
        : {}),
    }));
    await writeFileAtomic(path, JSON.stringify({ version: nextVersion, keys }, null, 2) + '\n', { mode: 0o600 });
  }

  /** Drops retired keys past their overlap, from memory and from the file. */
  async function dropExpired(): Promise<void> {
    const nowMs = now();
    const expired = entries.filter((entry) => entry.notAfter !== undefined && entry.notAfter <= nowMs);
    if (expired.length > 0) {
      const kept = entries.filter((entry) => !expired.includes(entry));
      await persist(kept, version);
      entries = kept;
      for (const entry of expired) log.info({ keyId: entry.keyId, notAfter: entry.notAfter }, 'retired signing key dropped');
    }
    arm();
  }

  function arm(): void {
    clearTimeout(timer);
    timer = undefined;
    const next = Math.min(...entries.map((entry) => entry.notAfter ?? Infinity));
    if (next === Infinity) return;
    timer = setTimeout(
      () => {
        rotating = rotating.then(dropExpired).catch((err: unknown) => log.error({ err, path }, 'dropping retired signing keys failed'));
      },
      Math.min(MAX_TIMER_MS, Math.max(0, next - now())),
    );
    timer.unref();
  }

  function activeKey(): SigningKey {
    return (entries.find((entry) => entry.notAfter === undefined) as Entry & { key: SigningKey }).key;
  }

  async function rotate(overlapMs: number): Promise<RotationResult> {
    if (!Number.isInteger(overlapMs) || overlapMs < 0 || overlapMs > MAX_KEY_OVERLAP_MS) {
      throw metasyncError(
        'METASYNC_ERR_REQUEST_INVALID',
        `overlapMs must be an integer from 0 to ${MAX_KEY_OVERLAP_MS}, got ${String(overlapMs)}`,
        { field: 'overlapMs', rule: `0..${MAX_KEY_OVERLAP_MS}` },
      );
    }
    const nowMs = now();
    const fresh = signingKeyFromPem(generateSigningKeyPem());
    const retiredNow = entries.map((entry) => (entry.notAfter === undefined ? { ...entry, notAfter: nowMs + overlapMs } : entry));
    const next = [
      { key: fresh, keyId: fresh.keyId, publicKey: fresh.publicKey, createdAt: nowMs, notAfter: undefined, storePem: true },
      ...retiredNow,
    ];
    await persist(next, version + 1);
    entries = next;
    version += 1;
    // The generated legacy file now lives in the ring (until the key is dropped); do not keep a second copy.
    if (legacyPem) await removeLegacyPem(join(dataDir, GENERATED_KEY_FILE));
    legacyPem = false;
    const retired = retiredNow
      .filter((entry) => entry.notAfter !== undefined)
      .map((entry) => ({ keyId: entry.keyId, notAfter: entry.notAfter as number }));
    log.info({ keyId: fresh.keyId, version, retired }, 'signing key rotated');
    await dropExpired();
    return {
      version,
      active: { keyId: fresh.keyId, publicKey: fresh.publicKey, active: true },
      retired: retired.filter((r) => r.notAfter > nowMs),
    };
  }

  if (stored !== undefined && entries.some((entry) => entry.notAfter !== undefined && entry.notAfter <= now())) await dropExpired();
  else arm();
  if (options.keyFile !== undefined && stored !== undefined && !stored.keys.some((entry) => entry.keyId === activeKey().keyId))
    await persist(entries, version);
  log.info({ keyId: activeKey().keyId, version, keys: entries.length }, 'signing keys loaded');

  return {
    active: activeKey,
    version: () => version,
    publicKeys() {
      const nowMs = now();
      return entries
        .filter((entry) => entry.notAfter === undefined || entry.notAfter > nowMs)
        .map((entry) => ({
          keyId: entry.keyId,
          publicKey: entry.publicKey,
          active: entry.notAfter === undefined,
          ...(entry.notAfter === undefined ? {} : { notAfter: entry.notAfter }),
        }));
    },
    signer(keyId) {
      const entry = entries.find((candidate) => candidate.keyId === keyId);
      if (entry?.key === undefined || (entry.notAfter !== undefined && entry.notAfter <= now())) return undefined;
      return entry.key;
    },
    rotate(rotateOptions) {
      const result = rotating.then(() => rotate(rotateOptions.overlapMs));
      rotating = result.catch(() => undefined);
      return result;
    },
    close() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}

async function readRingFile(path: string): Promise<z.infer<typeof ringFileSchema> | undefined> {
  const parsed = await readJsonFile(path, ringFileSchema, 'key set');
  if (parsed === undefined) return undefined;
  if (parsed.keys.filter((entry) => entry.notAfter === undefined).length !== 1) {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `key set ${path} must have exactly one active key (one without notAfter)`, { path });
  }
  return parsed;
}

function entryFromFile(entry: z.infer<typeof ringFileSchema>['keys'][number], path: string): Entry {
  const key = entry.pem === undefined ? undefined : signingKeyFromPem(entry.pem);
  if (key !== undefined && key.keyId !== entry.keyId) {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `key set ${path}: key ${entry.keyId} holds the private key of ${key.keyId}`, {
      path,
      keyId: entry.keyId,
    });
  }
  return {
    key,
    keyId: entry.keyId,
    publicKey: entry.publicKey,
    createdAt: entry.createdAt,
    notAfter: entry.notAfter,
    storePem: entry.pem !== undefined,
  };
}

async function removeLegacyPem(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (!hasErrno(err, 'ENOENT')) throw err;
  }
}
