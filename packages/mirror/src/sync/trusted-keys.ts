import { HEADERS, SYNC_ROUTES, verifyBody, type PublicKeyInfo, type StateResponse } from '@metasync/shared';
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

export interface TrustedKeys {
  /** The keys the mirror trusts; on first use (nothing pinned) those of `state`, else of a fresh state answer. */
  load(state?: StateResponse): Promise<PublicKeyInfo[]>;
  /** The keys the mirror trusts, or undefined while nothing is pinned; never pins (the proxy fallback asks this). */
  known(): Promise<PublicKeyInfo[] | undefined>;
  /** Runs `verify` with the trusted keys, once more after following an endorsed key rotation (key-trust.ts). */
  verifying: KeyTrust['verifying'];
  /** Verifies a document's signature against the trusted keys, then parses it; a refusal is counted and logged. */
  readSigned<T>(document: SignedDocument<T>): Promise<T>;
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

  async function readSigned<T>({ route, query, parse, what, body, signature }: SignedDocument<T>): Promise<T> {
    await load();
    try {
      await trust.verifying((keys) =>
        verifyBody(body, typeof signature === 'string' ? signature : undefined, { keys, nowMs: Date.now(), what }),
      );
    } catch (err) {
      metrics.batchesRefused.inc();
      logger.error({ err, route, query }, 'refused unsigned or forged document');
      throw err;
    }
    return await parse(body, what);
  }

  return { load, known: trust.load, verifying: trust.verifying, readSigned };
}
