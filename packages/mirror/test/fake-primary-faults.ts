import type { SigningKey } from '@metasync/shared';
import type { SignedResponse } from './fake-primary.js';

/** What a test can make the fake primary (fake-primary.ts) get wrong, to see the mirror refuse it. */
export interface FakePrimaryFaults {
  /** Sign with this key instead (forgery). */
  signWith?: SigningKey;
  /** Answer changes with this status. */
  changesStatus?: number;
  /** Drop SSE notifications. */
  silentEvents?: boolean;
  oldestSeq?: number;
  /** Rewrite a batch before signing. */
  rewriteBatch?: (batch: Record<string, unknown>) => Record<string, unknown>;
  /** Report this head in `state` (a primary restored from an old backup). */
  stateSeq?: number;
  /** Report this snapshot seq in `state` (0: a freshly ingested primary that wrote no snapshot yet). */
  snapshotSeq?: number;
  /** Corrupt the pack frame at this index. */
  corruptPackFrame?: number;
  /** In packs asked for gzip variants, send a gzip variant (or gzip body) of other bytes at this frame index. */
  wrongPackGzip?: number;
  /** Send each pack frame's body as a gzip variant (level 1), no trailer: a primary whose brotli variants are not made yet. */
  gzipPackBodies?: boolean;
  /** Answer `state` with these recorded bytes (a replaying hop: the freeze attack). */
  replayState?: SignedResponse;
  /** Answer `changes` with these recorded bytes. */
  replayChanges?: SignedResponse;
  /** Answer `snapshot` with these recorded bytes. */
  replaySnapshot?: SignedResponse;
  /** Sign snapshots over their body, without a statement (a primary from before statements). */
  snapshotSignedOverBody?: boolean;
  /** Change a snapshot's body after it is signed (a damaged file or a hop that rewrites it). */
  rewriteSnapshotBody?: (body: Buffer) => Buffer;
  /** Sign a snapshot statement that names another seq than its body (a signer's mistake: the hash still matches). */
  statementSeqOffset?: number;
  /** Answer `state` without echoing the request's nonce (a primary without the challenge). */
  ignoreNonce?: boolean;
}
