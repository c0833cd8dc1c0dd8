import {
  checkSnapshotHead,
  HEADERS,
  SYNC_ROUTES,
  verifyBody,
  verifySnapshotBody,
  type PublicKeyInfo,
  type Snapshot,
  type SnapshotStatement,
  type StateResponse,
} from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import type { MirrorMetrics } from '../metrics.js';
import { createKeyTrust, type KeyTrust } from './key-trust.js';
import type { PrimaryClient } from './primary-client.js';

export interface TrustedKeysOptions {
  dataDir: string;
  /** Pinned with --primary-key; otherwise trust on first use. */
  pinnedKeys: PublicKeyInfo[] | undefined;
  primaryUrl: string;
  client: PrimaryClient;
  metrics: MirrorMetrics;
  logger: Logger;
  /** The primary's state as offered (not necessarily confirmed): its keys are pinned on first use. */
  offeredState: () => Promise<StateResponse>;
}

export interface SignedDocument<T> {
  route: string;
  query?: Record<string, string> | undefined;
  /** Parses and checks the verified body (parse-document.ts). */
  parse(body: Buffer, what: string): T | Promise<T>;
  /** Names the document in errors: `snapshot`, `changes since 5`. */
  what: string;
  body: Buffer;
  signature: unknown;
}

/** A snapshot: signed through a statement of its body (HEADERS.snapshotStatement), or over the body by an older primary. */
export interface SignedSnapshotDocument extends Omit<SignedDocument<Snapshot>, 'what'> {
  statement: unknown;
}

export interface TrustedKeys {
  /** The keys the mirror trusts; on first use (nothing pinned) those of `state`, else of a fresh state answer. */
  load(state?: StateResponse): Promise<PublicKeyInfo[]>;
  /** The keys the mirror trusts, or undefined while nothing is pinned; never pins (the proxy fallback asks this). */
  known(): Promise<PublicKeyInfo[] | undefined>;
  /** Runs `verify` with the trusted keys, once more after following an endorsed key rotation (key-trust.ts). */
  verifying: KeyTrust['verifying'];
  /** Verifies a document's signature against the trusted keys, then parses it; a refusal is counted and logged. */
  readSigned<T>(document: SignedDocument<T>): Promise<T>;
  /** readSigned for a snapshot: its statement, its body's hash, then its seq and time against the statement. */
  readSignedSnapshot(document: SignedSnapshotDocument): Promise<Snapshot>;
}

/** Pinned or first-use keys, following the primary's key rotations through endorsed key sets (key-trust.ts). */
export function createTrustedKeys(options: TrustedKeysOptions): TrustedKeys {
  const { client, metrics, logger } = options;
  const trust = createKeyTrust({
    dataDir: options.dataDir,
    pinned: options.pinnedKeys?.[0],
    fetchKeySet: async (signer) => {
      const response = await client.get(SYNC_ROUTES.keys, { maxBytes: 64 * 1024, query: { signer } });
      return { status: response.status, body: response.body, signature: response.headers[HEADERS.signature] };
    },
    logger,
  });

  async function load(state?: StateResponse): Promise<PublicKeyInfo[]> {
    const known = await trust.load();
    if (known !== undefined) return known;
    const offered = state ?? (await options.offeredState());
    const pinned = await trust.pinOnFirstUse(offered.keys);
    logger.warn(
      { keyIds: offered.keys.map((k) => k.keyId), primary: options.primaryUrl },
      'trusting primary keys on first use; pin them with --primary-key',
    );
    return pinned;
  }

  /** Runs `verify` with the trusted keys; a refusal is counted and logged. */
  async function verified<R>(verify: (keys: readonly PublicKeyInfo[]) => R, context: { route: string; query?: unknown }): Promise<R> {
    await load();
    try {
      return await trust.verifying(verify);
    } catch (err) {
      metrics.batchesRefused.inc();
      logger.error({ err, ...context }, 'refused unsigned or forged document');
      throw err;
    }
  }

  async function readSigned<T>({ route, query, parse, what, body, signature }: SignedDocument<T>): Promise<T> {
    const header = typeof signature === 'string' ? signature : undefined;
    await verified((keys) => verifyBody(body, header, { keys, nowMs: Date.now(), what }), { route, query });
    return await parse(body, what);
  }

  async function readSignedSnapshot({ route, parse, body, signature, statement }: SignedSnapshotDocument): Promise<Snapshot> {
    const what = 'snapshot';
    const signed = {
      signature: typeof signature === 'string' ? signature : undefined,
      statement: typeof statement === 'string' ? statement : undefined,
    };
    const stated: SnapshotStatement | undefined = await verified(
      (keys) => verifySnapshotBody(body, signed, { keys, nowMs: Date.now(), what }),
      { route },
    );
    const snapshot = await parse(body, what);
    checkSnapshotHead(snapshot, stated, what);
    return snapshot;
  }

  return { load, known: trust.load, verifying: trust.verifying, readSigned, readSignedSnapshot };
}
