import { keyIdOf, metasyncError, type KeySet, type PublicKeyInfo } from '@metasync/shared';

/**
 * The mirror's trusted primary keys, and the one rule for widening them:
 * a key set is merged only after it verified against a key already trusted
 * (key-trust.ts does the fetching and verifying; this file is the pure merge).
 *
 *   trusted {A}  + KeySet v1 {B active, A notAfter T} signed by A  ->  {B, A until T}
 *
 * Merging never loosens trust: a lower version is refused (a replayed set),
 * a known key keeps the earliest `notAfter` it was ever given, a key missing
 * from a newer set is retired now, and a key id cannot change its public key.
 */
export interface TrustedKeys {
  /** The primary's key-set version this trust is at (0 = pinned or first use). */
  version: number;
  keys: PublicKeyInfo[];
  /** The --primary-key id this trust grew from; never dropped by the size cap. */
  anchor?: string | undefined;
}

/** Most keys kept; the oldest retired ones go first (a retired key stays listed so it stays refused). */
export const MAX_TRUSTED_KEYS = 16;

export interface MergeResult {
  trusted: TrustedKeys;
  /** Key ids trusted now that were not before. */
  added: string[];
}

export function mergeKeySet(current: TrustedKeys, offered: KeySet, nowMs: number): MergeResult {
  if (offered.version < current.version) {
    throw metasyncError(
      'METASYNC_ERR_SYNC_ROLLBACK',
      `primary key set version ${offered.version} is older than the trusted version ${current.version}`,
      {
        offered: offered.version,
        trusted: current.version,
      },
    );
  }
  if (new Set(offered.keys.map((key) => key.keyId)).size !== offered.keys.length) {
    throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `primary key set version ${offered.version} lists a key id twice`, {
      version: offered.version,
    });
  }
  for (const key of offered.keys) {
    if (keyIdOf(key.publicKey) !== key.keyId) {
      throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `primary key set lists key ${key.keyId} whose id does not match its public key`, {
        keyId: key.keyId,
      });
    }
    const known = current.keys.find((candidate) => candidate.keyId === key.keyId);
    if (known !== undefined && known.publicKey !== key.publicKey) {
      throw metasyncError(
        'METASYNC_ERR_SYNC_PROTOCOL',
        `primary key set gives key ${key.keyId} a different public key than the trusted one`,
        { keyId: key.keyId },
      );
    }
  }
  const merged: PublicKeyInfo[] = [];
  for (const key of offered.keys) {
    const known = current.keys.find((candidate) => candidate.keyId === key.keyId);
    merged.push(withNotAfter(key, earliest(known?.notAfter, key.notAfter)));
  }
  for (const key of current.keys) {
    if (merged.some((candidate) => candidate.keyId === key.keyId)) continue;
    // Left out of a newer set: the primary dropped it, so it is retired from now on (or earlier).
    merged.push(withNotAfter(key, offered.version > current.version ? earliest(key.notAfter, nowMs) : key.notAfter));
  }
  const trusted = { version: Math.max(current.version, offered.version), keys: capKeys(merged, current.anchor), anchor: current.anchor };
  const added = trusted.keys.filter((key) => !current.keys.some((known) => known.keyId === key.keyId)).map((key) => key.keyId);
  return { trusted, added };
}

/** True when `keyId` is in the set at all (retired or not): only an unknown key is worth asking the primary about. */
export function knowsKey(trusted: TrustedKeys, keyId: string): boolean {
  return trusted.keys.some((key) => key.keyId === keyId);
}

/** Keys that may still sign (no `notAfter`, or not yet past it), the active one first. */
export function usableKeys(trusted: TrustedKeys, nowMs: number): PublicKeyInfo[] {
  return trusted.keys
    .filter((key) => key.notAfter === undefined || key.notAfter >= nowMs)
    .sort((a, b) => Number(b.active) - Number(a.active));
}

/**
 * Keys whose endorsement of a key set the mirror accepts: the active key(s) only,
 * as long as one is known. A retired key still within its overlap may sign
 * documents, but once the mirror follows its successor it must not be able to
 * bring in keys: that is what a leaked old key would be used for.
 */
export function endorsingKeys(trusted: TrustedKeys, nowMs: number): PublicKeyInfo[] {
  const usable = usableKeys(trusted, nowMs);
  const active = usable.filter((key) => key.active && key.notAfter === undefined);
  return active.length > 0 ? active : usable;
}

function earliest(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

function withNotAfter(key: PublicKeyInfo, notAfter: number | undefined): PublicKeyInfo {
  const { notAfter: _dropped, ...rest } = key;
  return notAfter === undefined ? { ...rest } : { ...rest, active: false, notAfter };
}

function capKeys(keys: PublicKeyInfo[], anchor: string | undefined): PublicKeyInfo[] {
  if (keys.length <= MAX_TRUSTED_KEYS) return keys;
  const droppable = keys
    .filter((key) => key.notAfter !== undefined && key.keyId !== anchor)
    .sort((a, b) => (a.notAfter as number) - (b.notAfter as number))
    .slice(0, keys.length - MAX_TRUSTED_KEYS);
  return keys.filter((key) => !droppable.includes(key));
}
