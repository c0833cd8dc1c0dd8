import { isMetasyncError, keySetSchema, verifyBody, type PublicKeyInfo } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import { endorsingKeys, knowsKey, mergeKeySet, type TrustedKeys } from './key-set.js';
import { readTrustedKeys, writeTrustedKeys } from './keys.js';
import { parseSyncDocument } from './parse-document.js';

/**
 * Following the primary's key rotations without a restart and without
 * trusting the network (docs/protocol.md, "Key rotation"):
 *
 *   document signed by key B, B unknown -> GET keys?signer=A for the trusted active key A
 *        -> verify the set's signature against A alone -> merge (key-set.ts) -> persist -> verify again
 *
 * A key set signed by anything but a key the mirror already trusts is refused,
 * so an attacker's key never gets in; a document signed by a known but retired
 * key is refused without asking (the caller logs it and keeps serving).
 */
export interface KeyTrustOptions {
  dataDir: string;
  /** From --primary-key; the trust starts from it unless the data dir already grew from it. */
  pinned: PublicKeyInfo | undefined;
  /** GET /sync/v1/keys?signer=<signerId>. */
  fetchKeySet: (signerId: string) => Promise<{ status: number; body: Buffer; signature: unknown }>;
  logger: Logger;
  now?: () => number;
  /** Least time between two attempts to learn the same unknown key id (a flood of forged documents must not become a flood of requests). */
  minLearnIntervalMs?: number;
}

export interface KeyTrust {
  /** The trusted keys; undefined when nothing is pinned yet (the caller trusts on first use). */
  load(): Promise<PublicKeyInfo[] | undefined>;
  /** Pins `keys` when nothing was pinned (trust on first use). */
  pinOnFirstUse(keys: readonly PublicKeyInfo[]): Promise<PublicKeyInfo[]>;
  /**
   * Runs `verify` with the trusted keys. When it throws SIGNATURE_UNKNOWN_KEY for a
   * key the mirror has never seen, learns the endorsed key set once and runs it again.
   */
  verifying<T>(verify: (keys: readonly PublicKeyInfo[]) => T): Promise<T>;
}

/** Bound on the per-key-id memory of `minLearnIntervalMs`. */
const MAX_REMEMBERED_ASKS = 64;

/** Failures that mean the key set itself was refused (as opposed to not fetched). */
const REFUSAL_CODES: ReadonlySet<string> = new Set([
  'METASYNC_ERR_SIGNATURE_INVALID',
  'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY',
  'METASYNC_ERR_SYNC_PROTOCOL',
  'METASYNC_ERR_SYNC_ROLLBACK',
]);

export function createKeyTrust(options: KeyTrustOptions): KeyTrust {
  const { logger } = options;
  const now = options.now ?? Date.now;
  const minLearnIntervalMs = options.minLearnIntervalMs ?? 1_000;
  let trusted: TrustedKeys | undefined;
  let loaded = false;
  /** Unknown key id -> when the mirror last asked about it. */
  const askedAtMs = new Map<string, number>();
  let learning: Promise<void> | undefined;

  /** One initial load at a time: the syncer and the proxy fallback may both ask first. */
  let loading: Promise<void> | undefined;

  async function load(): Promise<PublicKeyInfo[] | undefined> {
    if (!loaded) {
      loading ??= initialTrust().then(
        (initial) => {
          if (!loaded) trusted = initial;
          loaded = true;
        },
        (err: unknown) => {
          loading = undefined;
          throw err;
        },
      );
      await loading;
    }
    return trusted?.keys;
  }

  async function initialTrust(): Promise<TrustedKeys | undefined> {
    const stored = await readTrustedKeys(options.dataDir);
    const pinned = options.pinned;
    if (pinned === undefined) return stored;
    if (stored?.keys.some((key) => key.keyId === pinned.keyId && key.publicKey === pinned.publicKey) === true) return stored;
    if (stored !== undefined)
      logger.warn(
        { keyId: pinned.keyId, stored: stored.keys.map((k) => k.keyId) },
        'pinned primary key is not in the stored key set: starting over from --primary-key',
      );
    const fresh = { version: 0, keys: [pinned], anchor: pinned.keyId };
    await writeTrustedKeys(options.dataDir, fresh);
    return fresh;
  }

  async function learn(unknownKeyId: string): Promise<void> {
    if (now() - (askedAtMs.get(unknownKeyId) ?? -Infinity) < minLearnIntervalMs) return;
    if (askedAtMs.size >= MAX_REMEMBERED_ASKS) askedAtMs.clear();
    askedAtMs.set(unknownKeyId, now());
    const current = trusted as TrustedKeys;
    for (const signer of endorsingKeys(current, now())) {
      const what = `key set signed by ${signer.keyId}`;
      try {
        const answer = await options.fetchKeySet(signer.keyId);
        if (answer.status !== 200) {
          logger.warn({ signer: signer.keyId, status: answer.status }, 'primary cannot endorse its key set with this key');
          continue;
        }
        verifyBody(answer.body, typeof answer.signature === 'string' ? answer.signature : undefined, {
          keys: [signer],
          nowMs: now(),
          what,
        });
        const offered = parseSyncDocument(answer.body, keySetSchema, what);
        const { trusted: next, added } = mergeKeySet(current, offered, now());
        await writeTrustedKeys(options.dataDir, next);
        trusted = next;
        logger.info({ added, version: next.version, signer: signer.keyId, keyIds: next.keys.map((k) => k.keyId) }, 'learned primary keys');
        return;
      } catch (err) {
        if (!isMetasyncError(err)) throw err;
        if (REFUSAL_CODES.has(err.code)) logger.error({ err, signer: signer.keyId, unknownKeyId }, 'refused primary key set');
        else logger.warn({ err, signer: signer.keyId }, 'key set fetch failed');
      }
    }
  }

  return {
    load,
    async pinOnFirstUse(keys) {
      const fresh = { version: 0, keys: [...keys] };
      await writeTrustedKeys(options.dataDir, fresh);
      trusted = fresh;
      loaded = true;
      return fresh.keys;
    },
    async verifying(verify) {
      const keys = await load();
      if (keys === undefined || trusted === undefined) throw new Error('key trust used before any key was pinned');
      try {
        return verify(keys);
      } catch (err) {
        const keyId = isMetasyncError(err, 'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY') ? err.details.keyId : undefined;
        if (typeof keyId !== 'string' || knowsKey(trusted, keyId)) throw err;
        learning ??= learn(keyId).finally(() => {
          learning = undefined;
        });
        await learning;
        // Still unknown (a forged document, or the set could not be learned): this throws again.
        return verify(trusted.keys);
      }
    },
  };
}
