import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliCompressSync, gzipSync, constants as zlibConstants } from 'node:zlib';
import {
  HEADERS,
  PACK_CONTENT_TYPE,
  SYNC_ROUTES,
  etagFor,
  formatHttpDate,
  generateSigningKeyPem,
  sha256Hex,
  signBody,
  signProxyAnswer,
  signSnapshotStatement,
  signingKeyFromPem,
  type ChangeEntry,
  type SigningKey,
} from '@metasync/shared';
import type { FakePrimaryFaults } from './fake-primary-faults.js';

/**
 * A protocol-level stand-in for the primary, for the mirror's package tests:
 * it speaks packages/shared/src/protocol/ from an in-memory journal so sync
 * edge cases (forged signatures, rollbacks, 410, lost events) can be staged
 * exactly. Root test/ scenarios use the real primary process instead.
 */
const BR_FAST = { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 4 } };

export interface FakePrimary {
  url: string;
  key: SigningKey;
  /** Commits one generation: files to write (path -> content) and paths to delete. */
  publish(files: Record<string, string>, deletions?: string[]): number;
  /** Raw request targets received, in order. */
  requests: string[];
  acks: unknown[];
  /** Overrides for staging faults (fake-primary-faults.ts). */
  faults: FakePrimaryFaults;
  /** Every signed answer sent, by route name, oldest first: material for replays. */
  signed: { state: SignedResponse[]; changes: SignedResponse[]; snapshot: SignedResponse[] };
  /** Object counts of each pack request. */
  packRequests: number[];
  /** Whether each pack request took brotli variants (its `brotli` flag, absent meaning true). */
  packBrotli: boolean[];
  seq(): number;
  /** Sends a head event for `seq` on every open event stream, whatever the journal holds (an unsigned, forged hint). */
  announce(seq: number): void;
  close(): Promise<void>;
}

export interface SignedResponse {
  body: Buffer;
  signature: string;
  /** A snapshot's signed statement of its body (HEADERS.snapshotStatement), as the primary sends it. */
  statement?: string;
}

export async function startFakePrimary(): Promise<FakePrimary> {
  const key = signingKeyFromPem(generateSigningKeyPem());
  const objects = new Map<string, Buffer>();
  const generations: { seq: number; time: number; entries: ChangeEntry[] }[] = [];
  const current = new Map<string, { sha256: string; size: number; mtime: number }>();
  const sse = new Set<ServerResponse>();
  const requests: string[] = [];
  const acks: unknown[] = [];
  const packRequests: number[] = [];
  const packBrotli: boolean[] = [];
  const faults: FakePrimaryFaults = {};
  let head = 0;
  let lastTime = 0;

  const send = (res: ServerResponse, status: number, body: Buffer | string, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-length': String(Buffer.byteLength(body)), ...headers });
    res.end(body);
  };
  const signed: FakePrimary['signed'] = { state: [], changes: [], snapshot: [] };
  const sendRecorded = (res: ServerResponse, answer: SignedResponse): void => {
    send(res, 200, answer.body, {
      'content-type': 'application/json',
      [HEADERS.signature]: answer.signature,
      ...(answer.statement === undefined ? {} : { [HEADERS.snapshotStatement]: answer.statement }),
    });
  };
  const sendSigned = (res: ServerResponse, doc: Record<string, unknown>, route: keyof FakePrimary['signed']): void => {
    const body = Buffer.from(JSON.stringify(doc));
    const answer = { body, signature: signBody(faults.signWith ?? key, body) };
    signed[route].push(answer);
    sendRecorded(res, answer);
  };

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    requests.push(url);
    const [path, query = ''] = url.split('?') as [string, string?];
    const params = new URLSearchParams(query);
    if (path === SYNC_ROUTES.state) {
      if (faults.replayState !== undefined) return sendRecorded(res, faults.replayState);
      const nonce = faults.ignoreNonce === true ? null : params.get('nonce');
      const state = {
        protocol: 1,
        ...(nonce === null ? {} : { nonce }),
        seq: faults.stateSeq ?? head,
        time: lastTime,
        oldestSeq: faults.oldestSeq ?? 0,
        snapshotSeq: faults.snapshotSeq ?? head,
        keys: [{ keyId: key.keyId, publicKey: key.publicKey, active: true }],
      };
      sendSigned(res, state, 'state');
      return;
    }
    if (path === SYNC_ROUTES.events) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`event: head\ndata: ${JSON.stringify({ seq: head, time: lastTime })}\n\n`);
      sse.add(res);
      res.on('close', () => sse.delete(res));
      return;
    }
    if (path === SYNC_ROUTES.changes) {
      const since = Number(params.get('since'));
      if (faults.changesStatus !== undefined) return send(res, faults.changesStatus, '{}');
      if (faults.replayChanges !== undefined) return sendRecorded(res, faults.replayChanges);
      if (since < (faults.oldestSeq ?? 0)) {
        return send(
          res,
          410,
          JSON.stringify({ code: 'METASYNC_ERR_SYNC_RESYNC_REQUIRED', message: 'too old', oldestSeq: faults.oldestSeq, snapshotSeq: head }),
        );
      }
      const merged = new Map<string, ChangeEntry>();
      let time = 0;
      for (const generation of generations.filter((g) => g.seq > since)) {
        for (const entry of generation.entries) merged.set(entry.path, entry);
        time = generation.time;
      }
      const batch = { kind: 'changes', from: since, to: Math.max(head, since), head, time, entries: [...merged.values()] };
      sendSigned(res, faults.rewriteBatch?.(batch) ?? batch, 'changes');
      return;
    }
    if (path === SYNC_ROUTES.snapshot) {
      if (faults.replaySnapshot !== undefined) return sendRecorded(res, faults.replaySnapshot);
      const snapshot = { kind: 'snapshot', seq: head, time: lastTime, entries: [...current].map(([p, e]) => ({ path: p, ...e })) };
      if (faults.snapshotSignedOverBody === true) return sendSigned(res, snapshot, 'snapshot');
      const body = Buffer.from(JSON.stringify(snapshot));
      const statement = { seq: head + (faults.statementSeqOffset ?? 0), time: lastTime, length: body.length, sha256: sha256Hex(body) };
      const answer = { body: faults.rewriteSnapshotBody?.(body) ?? body, ...signSnapshotStatement(faults.signWith ?? key, statement) };
      signed.snapshot.push(answer);
      sendRecorded(res, answer);
      return;
    }
    if (path.startsWith(`${SYNC_ROUTES.objects}/`) && path !== SYNC_ROUTES.objectPack) {
      const object = objects.get(path.slice(SYNC_ROUTES.objects.length + 1));
      if (object === undefined) return send(res, 404, '{}');
      if (/\bbr\b/.test(String(req.headers['accept-encoding'] ?? '')))
        return send(res, 200, brotliCompressSync(object, BR_FAST), { 'content-encoding': 'br' });
      return send(res, 200, object);
    }
    if (path === SYNC_ROUTES.objectPack && req.method === 'POST') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const {
          objects: wanted,
          gzip: withGzip,
          brotli,
        } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          objects: string[];
          gzip?: boolean;
          brotli?: boolean;
        };
        packRequests.push(wanted.length);
        packBrotli.push(brotli !== false);
        res.writeHead(200, { 'content-type': PACK_CONTENT_TYPE });
        wanted.forEach((sha256, i) => {
          const object = objects.get(sha256);
          // Without brotli, as the real primary: the gzip variant is the frame's body.
          if ((faults.gzipPackBodies === true || brotli === false) && object !== undefined) {
            let body = gzipSync(faults.wrongPackGzip === i ? Buffer.concat([object, Buffer.from(' ')]) : object, { level: 1 });
            if (faults.corruptPackFrame === i) body = Buffer.concat([body.subarray(0, 10), Buffer.from('garbage'), body.subarray(17)]);
            const head = Buffer.from(JSON.stringify({ sha256, length: body.length, encoding: 'gzip' }));
            const lengthPrefix = Buffer.alloc(4);
            lengthPrefix.writeUInt32BE(head.length, 0);
            res.write(Buffer.concat([lengthPrefix, head, body]));
            return;
          }
          let bytes = object === undefined ? Buffer.alloc(0) : brotliCompressSync(object, BR_FAST);
          if (faults.corruptPackFrame === i) bytes = Buffer.concat([bytes, Buffer.from('x')]).subarray(1);
          const gz =
            object === undefined || withGzip !== true
              ? undefined
              : gzipSync(faults.wrongPackGzip === i ? Buffer.concat([object, Buffer.from(' ')]) : object);
          const header = Buffer.from(
            JSON.stringify(
              object === undefined
                ? { sha256, length: 0, encoding: 'identity', missing: true }
                : { sha256, length: bytes.length, encoding: 'br', ...(gz === undefined ? {} : { gzipLength: gz.length }) },
            ),
          );
          const prefix = Buffer.alloc(4);
          prefix.writeUInt32BE(header.length, 0);
          res.write(Buffer.concat(gz === undefined ? [prefix, header, bytes] : [prefix, header, bytes, gz]));
        });
        res.end();
      });
      return;
    }
    if (path === SYNC_ROUTES.ack && req.method === 'POST') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        acks.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        send(res, 204, '');
      });
      return;
    }
    const repoPath = decodeURIComponent(path.slice(1));
    const entry = current.get(repoPath);
    if (entry === undefined) return send(res, 404, '{}');
    // Vouched for as the real primary does (routes/repository.ts), so the proxy fallback serves it.
    const fields = { path: repoPath, sha256: entry.sha256, seq: head, mtime: entry.mtime };
    send(res, 200, objects.get(entry.sha256)!, {
      etag: etagFor(entry.sha256),
      'last-modified': formatHttpDate(entry.mtime),
      'content-type': 'application/json',
      [HEADERS.path]: repoPath,
      [HEADERS.sha256]: entry.sha256,
      [HEADERS.seq]: String(head),
      [HEADERS.mtime]: String(entry.mtime),
      [HEADERS.signature]: signProxyAnswer(faults.signWith ?? key, fields),
    });
  }

  const server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    key,
    requests,
    acks,
    faults,
    signed,
    packRequests,
    packBrotli,
    seq: () => head,
    announce(seq) {
      for (const res of sse) res.write(`event: head\ndata: ${JSON.stringify({ seq, time: lastTime })}\n\n`);
    },
    publish(files, deletions = []) {
      head++;
      lastTime = Math.max(Date.now(), lastTime + 1);
      const entries: ChangeEntry[] = [];
      for (const [path, content] of Object.entries(files)) {
        const raw = Buffer.from(content);
        const sha256 = sha256Hex(raw);
        objects.set(sha256, raw);
        const entry = { sha256, size: raw.length, mtime: lastTime };
        current.set(path, entry);
        entries.push({ path, ...entry });
      }
      for (const path of deletions) {
        current.delete(path);
        entries.push({ path, deleted: true, mtime: lastTime });
      }
      generations.push({ seq: head, time: lastTime, entries });
      if (faults.silentEvents !== true) {
        for (const res of sse) res.write(`event: head\ndata: ${JSON.stringify({ seq: head, time: lastTime })}\n\n`);
      }
      return head;
    },
    async close() {
      for (const res of sse) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
