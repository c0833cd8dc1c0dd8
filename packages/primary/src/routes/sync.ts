import { open } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import {
  HEADERS,
  MIRROR_ID_PATTERN,
  PROTOCOL_VERSION,
  STATE_NONCE_PATTERN,
  SYNC_ROUTES,
  ackRequestSchema,
  chooseEncoding,
  metasyncError,
  type KeySet,
  signBody,
  type SigningKey,
  type StateResponse,
} from '@metasync/shared';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { buildChangesBatch, parseSeqParam } from '../journal/changes-batch.js';
import type { KeyRing } from '../keys/key-ring.js';
import type { MirrorRegistry } from '../mirrors/registry.js';
import type { Notifier } from '../mirrors/notifier.js';
import type { PrimaryPublisher } from '../publish/publisher.js';
import type { SnapshotScheduler } from '../journal/snapshot-scheduler.js';
import { SNAPSHOT_BODY_OFFSET } from '../journal/snapshot-file.js';
import type { RequireMirror } from './mirror-auth.js';

/** Sync API under /sync/v1 (see packages/shared/src/protocol.ts and docs/protocol.md); objects are in sync-objects.ts. */
export interface SyncRoutesOptions {
  publisher: PrimaryPublisher;
  snapshots: SnapshotScheduler;
  /** Signing keys: the active one signs; retired ones within their overlap endorse the key set. */
  keyRing: Pick<KeyRing, 'active' | 'publicKeys' | 'signer' | 'version'>;
  notifier: Notifier;
  registry: MirrorRegistry;
  /** Acks and named push streams need the mirror's credential (mirror-auth.ts). */
  requireMirror: RequireMirror;
  observeVisible: (latencyMs: number) => void;
  now: () => number;
}

/** A snapshot signed this recently is served again rather than re-signed at every new head. */
const SNAPSHOT_REUSE_MS = 1_000;

/** Bodies above this are gzipped when the client accepts it (signatures cover the uncompressed bytes). */
const COMPRESS_ABOVE_BYTES = 8 * 1024;

export function syncRoutes(app: FastifyInstance, options: SyncRoutesOptions): void {
  const { publisher, snapshots, keyRing, notifier, registry, now } = options;
  const journal = publisher.journal;

  // Signed, and echoing the mirror's challenge nonce: a replayed state cannot answer a new nonce (freeze defence).
  app.get(SYNC_ROUTES.state, async (request: FastifyRequest<{ Querystring: Record<string, string | undefined> }>, reply) => {
    const nonce = request.query.nonce;
    if (nonce !== undefined && !STATE_NONCE_PATTERN.test(nonce)) {
      throw metasyncError('METASYNC_ERR_REQUEST_INVALID', `query parameter nonce must match ${STATE_NONCE_PATTERN.source}`, {
        field: 'nonce',
        rule: STATE_NONCE_PATTERN.source,
      });
    }
    const state: StateResponse = {
      protocol: PROTOCOL_VERSION,
      ...(nonce === undefined ? {} : { nonce }),
      seq: journal.headSeq(),
      time: journal.headTime(),
      oldestSeq: journal.oldestSeq(),
      snapshotSeq: snapshots.lastSnapshotSeq(),
      keys: keyRing.publicKeys(),
    };
    return sendSigned(request, reply, Buffer.from(JSON.stringify(state)), keyRing.active());
  });

  app.get(SYNC_ROUTES.changes, async (request: FastifyRequest<{ Querystring: Record<string, string | undefined> }>, reply) => {
    const since = parseSeqParam('since', request.query.since, true) as number;
    const limit = parseSeqParam('limit', request.query.limit, false);
    if (limit === 0)
      throw metasyncError('METASYNC_ERR_REQUEST_INVALID', 'query parameter limit must be at least 1', { field: 'limit', rule: '>= 1' });
    const batch = buildChangesBatch({
      journal,
      since,
      snapshotSeq: snapshots.lastSnapshotSeq(),
      ...(limit === undefined ? {} : { limit }),
    });
    return sendSigned(request, reply, Buffer.from(JSON.stringify(batch)), keyRing.active());
  });

  // Key rotation: the key set signed by a key the mirror already trusts (`signer`), so it can learn the new key safely.
  app.get(SYNC_ROUTES.keys, async (request: FastifyRequest<{ Querystring: Record<string, string | undefined> }>, reply) => {
    const signerId = request.query.signer;
    const signer = signerId === undefined ? keyRing.active() : keyRing.signer(signerId);
    if (signer === undefined) {
      throw metasyncError(
        'METASYNC_ERR_REQUEST_INVALID',
        `signer ${String(signerId).slice(0, 40)} is not a key this primary can sign with (active, or retired within its overlap)`,
        {
          field: 'signer',
          rule: 'a current or overlapping key id',
        },
      );
    }
    const keySet: KeySet = { kind: 'keys', version: keyRing.version(), issuedAt: now(), keys: keyRing.publicKeys() };
    return sendSigned(request, reply, Buffer.from(JSON.stringify(keySet)), signer);
  });

  // A snapshot of 100k paths is ~15 MB of JSON: signed once per head seq into a file, gzipped once into
  // another, and streamed from disk (snapshot-scheduler.ts).
  app.get(SYNC_ROUTES.snapshot, async (request, reply) => {
    const snapshot = await snapshots.current({ maxAgeMs: SNAPSHOT_REUSE_MS });
    const gzip = chooseEncoding(request.headers['accept-encoding'], ['gzip']) === 'gzip';
    // Opened before anything is sent: a file pruned meanwhile fails the request whole (500), never midway.
    const served = gzip ? await snapshots.gzipped(snapshot) : undefined;
    const file = await open(served?.path ?? snapshot.path, 'r');
    const start = served === undefined ? SNAPSHOT_BODY_OFFSET : 0;
    const length = served?.length ?? snapshot.length;
    void reply
      .header(HEADERS.signature, snapshot.signature)
      .header(HEADERS.snapshotStatement, snapshot.statement)
      .header(HEADERS.seq, String(snapshot.seq))
      .header('content-type', 'application/json')
      .header('content-length', String(length))
      .header('cache-control', 'no-store')
      .header('vary', 'accept-encoding');
    if (gzip) void reply.header('content-encoding', 'gzip');
    return reply.send(file.createReadStream({ start, end: start + length - 1 }));
  });

  app.post(SYNC_ROUTES.ack, (request, reply) => {
    const parsed = ackRequestSchema.safeParse(request.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw metasyncError(
        'METASYNC_ERR_REQUEST_INVALID',
        `ack body is invalid: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim(),
        {
          field: issue?.path.join('.') ?? '',
          rule: issue?.message ?? '',
        },
      );
    }
    options.requireMirror(request, parsed.data.mirrorId, 'ack');
    if (parsed.data.seq > journal.headSeq()) {
      throw metasyncError('METASYNC_ERR_REQUEST_INVALID', `ack of seq ${parsed.data.seq} is ahead of the head seq ${journal.headSeq()}`, {
        field: 'seq',
        rule: 'at most head',
      });
    }
    const { visibleMs } = registry.ack(parsed.data, now());
    if (visibleMs !== undefined) options.observeVisible(visibleMs);
    void reply.code(204).send();
  });

  app.get(SYNC_ROUTES.mirrors, (_request, reply) => {
    void reply.header('cache-control', 'no-store').send(registry.list(now()));
  });

  app.get(SYNC_ROUTES.events, (request: FastifyRequest<{ Querystring: Record<string, string | undefined> }>, reply) => {
    const header = request.headers[HEADERS.mirrorId];
    const fromHeader = Array.isArray(header) ? header[0] : header;
    const candidate = fromHeader ?? request.query.mirror;
    const mirrorId = candidate !== undefined && MIRROR_ID_PATTERN.test(candidate) ? candidate : undefined;
    // A stream that names a mirror registers it, so it must be that mirror's; an anonymous one only hears heads (public).
    if (mirrorId !== undefined) {
      options.requireMirror(request, mirrorId, 'events');
      registry.seen(mirrorId, now());
    }
    reply.hijack();
    notifier.attach(reply.raw, mirrorId);
  });
}

const gzipAsync = promisify(gzip);

async function sendSigned(request: FastifyRequest, reply: FastifyReply, body: Buffer, key: SigningKey): Promise<FastifyReply> {
  void reply
    .header(HEADERS.signature, signBody(key, body))
    .header('content-type', 'application/json')
    .header('cache-control', 'no-store')
    .header('vary', 'accept-encoding');
  if (body.length > COMPRESS_ABOVE_BYTES && chooseEncoding(request.headers['accept-encoding'], ['gzip']) === 'gzip') {
    return reply.header('content-encoding', 'gzip').send(await gzipAsync(body, { level: 1 }));
  }
  return reply.send(body);
}
