import { Pool, type Dispatcher } from 'undici';
import { promisify } from 'node:util';
import { gunzip, gunzipSync } from 'node:zlib';
import {
  HEADERS,
  SYNC_ROUTES,
  isMetasyncError,
  COMPRESSED_SLACK_BYTES,
  metasyncError,
  readPackFrames,
  tlsHandshakeError,
  type AckRequest,
} from '@metasync/shared';
import { decodeBounded, verifyGzip, verifyRaw } from './object-verify.js';
import { PRIMARY_TLS_HINT, primaryConnectOptions } from './primary-ca.js';

const gunzipAsync = promisify(gunzip);
/** Compressed bodies up to this size are inflated on the event loop (a few ms at most). */
const INLINE_GUNZIP_BYTES = 256 * 1024;

/**
 * The mirror's side of the sync protocol's transport: one keep-alive undici
 * Pool to the primary (no handshake per object), requests relative to the
 * primary's base URL only. Parsing and signature checks live in the callers;
 * this file turns HTTP outcomes into project errors with the URL in them.
 */
export interface PrimaryClientOptions {
  primaryUrl: string;
  mirrorId: string;
  /** The mirror's enrollment credential, sent on acks (the primary refuses an ack without it). */
  credential?: string;
  connections: number;
  connectTimeoutMs: number;
  /** Per-request budget for headers and for body inactivity. */
  requestTimeoutMs: number;
  /** --primary-ca: the CAs an https:// primary must chain to (else the system CAs). */
  ca?: Buffer | undefined;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface FetchedObject {
  raw: Buffer;
  /** The primary's brotli bytes, decoded and hashed: kept as the `.br` variant. */
  brotli?: Buffer;
  /** The primary's gzip bytes (a gzip body, decoded and hashed; or a pack frame's trailer, gunzipped and compared with `raw`): kept as the `.gz` variant. */
  gzip?: Buffer;
  /** Bytes that crossed the wire. */
  wireBytes: number;
}

export interface PackOutcome {
  delivered: Set<string>;
  /** Why the pack stopped early, if it did. */
  error?: unknown;
}

export interface PrimaryClient {
  readonly origin: string;
  /** `/base` + route: never anything but the primary's own namespace. */
  urlPath(route: string): string;
  get(route: string, options?: { maxBytes?: number; query?: Record<string, string> }): Promise<RawResponse>;
  fetchObject(sha256: string, size: number): Promise<FetchedObject>;
  /**
   * Fetches many objects in one framed stream (`objects/pack`), handing each
   * verified one to `onObject` as it arrives. Never throws for a bad frame or a
   * broken stream: it stops there and returns the hashes delivered, so the
   * caller fetches the rest one by one.
   */
  /** `brotli: false` asks for no brotli variants (the caller makes its own later): each frame is then its gzip variant. */
  fetchPack(
    objects: readonly { sha256: string; size: number }[],
    onObject: (sha256: string, object: FetchedObject) => Promise<void>,
    options?: { brotli?: boolean },
  ): Promise<PackOutcome>;
  ack(body: AckRequest): Promise<void>;
  /** POSTs JSON to a sync route with the mirror's credential (as acks are); the caller judges the answer. */
  postAsMirror(route: string, body: unknown): Promise<RawResponse>;
  /** The pool, for the proxy (repository paths) and the events stream. */
  readonly dispatcher: Dispatcher;
  close(): Promise<void>;
}

export function createPrimaryClient(options: PrimaryClientOptions): PrimaryClient {
  const base = new URL(options.primaryUrl);
  const basePath = base.pathname.replace(/\/+$/, '');
  const pool = new Pool(base.origin, {
    connections: options.connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    connect: primaryConnectOptions(options.connectTimeoutMs, options.ca),
    headersTimeout: options.requestTimeoutMs,
    bodyTimeout: options.requestTimeoutMs,
  });
  const commonHeaders = { [HEADERS.mirrorId]: options.mirrorId };
  const urlPath = (route: string): string => `${basePath}${route.startsWith('/') ? '' : '/'}${route}`;

  async function request(
    path: string,
    init: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: string; maxBytes: number },
  ): Promise<RawResponse> {
    const where = `${base.origin}${path}`;
    let response: Dispatcher.ResponseData;
    try {
      response = await pool.request({
        path,
        method: init.method ?? 'GET',
        headers: { ...commonHeaders, ...init.headers },
        ...(init.body === undefined ? {} : { body: init.body }),
      });
    } catch (err) {
      // An untrusted certificate is not an outage: it needs the operator, so it says what to fix.
      throw (
        tlsHandshakeError(err, where, PRIMARY_TLS_HINT) ??
        metasyncError(
          'METASYNC_ERR_SYNC_UNREACHABLE',
          `primary ${where} could not be reached: ${(err as Error).message}`,
          { url: where },
          err,
        )
      );
    }
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of response.body) {
        const buffer = chunk as Buffer;
        total += buffer.length;
        if (total > init.maxBytes) {
          response.body.destroy();
          throw metasyncError('METASYNC_ERR_OBJECT_TOO_LARGE', `response from ${where} exceeds ${init.maxBytes} bytes`, {
            url: where,
            maxBytes: init.maxBytes,
          });
        }
        chunks.push(buffer);
      }
    } catch (err) {
      if (isMetasyncError(err)) throw err;
      throw metasyncError(
        'METASYNC_ERR_SYNC_UNREACHABLE',
        `response body from ${where} broke off: ${(err as Error).message}`,
        { url: where },
        err,
      );
    }
    return { status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks, total) };
  }

  /** A small JSON POST authenticated with the mirror's credential (acks, dist pins). */
  function postAsMirror(route: string, body: unknown): Promise<RawResponse> {
    return request(urlPath(route), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(options.credential === undefined ? {} : { authorization: `Bearer ${options.credential}` }),
      },
      body: JSON.stringify(body),
      maxBytes: 64 * 1024,
    });
  }

  return {
    origin: base.origin,
    urlPath,
    dispatcher: pool,
    async get(route, getOptions = {}) {
      const query = getOptions.query === undefined ? '' : `?${new URLSearchParams(getOptions.query).toString()}`;
      const maxBytes = getOptions.maxBytes ?? 512 * 1024 * 1024;
      // Signed bodies (changes, snapshots) may come gzipped; the signature covers the decoded bytes.
      const response = await request(urlPath(route) + query, { headers: { 'accept-encoding': 'gzip' }, maxBytes });
      const encoding = String(response.headers['content-encoding'] ?? 'identity')
        .trim()
        .toLowerCase();
      if (encoding === 'identity' || encoding === '') return response;
      if (encoding !== 'gzip')
        throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `${route} came with unsupported content-encoding ${encoding}`, {
          route,
          encoding,
        });
      try {
        // A large body on the threadpool (a million-path snapshot is 150 MB to inflate, 0.6 s, and the mirror
        // serves meanwhile); a publish's small batch here, without the threadpool's round trip.
        const options = { maxOutputLength: maxBytes };
        const body =
          response.body.length <= INLINE_GUNZIP_BYTES ? gunzipSync(response.body, options) : await gunzipAsync(response.body, options);
        return { ...response, body };
      } catch (err) {
        throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `${route} body does not gunzip: ${(err as Error).message}`, { route }, err);
      }
    },
    async fetchObject(sha256, size) {
      const path = urlPath(`${SYNC_ROUTES.objects}/${sha256}`);
      const response = await request(path, { headers: { 'accept-encoding': 'br, gzip' }, maxBytes: size + COMPRESSED_SLACK_BYTES });
      if (response.status === 404) {
        throw metasyncError('METASYNC_ERR_OBJECT_NOT_FOUND', `primary has no object ${sha256}`, { sha256, url: `${base.origin}${path}` });
      }
      if (response.status !== 200) {
        throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `object ${sha256} answered HTTP ${response.status}`, {
          sha256,
          status: response.status,
        });
      }
      const encoding = String(response.headers['content-encoding'] ?? 'identity')
        .trim()
        .toLowerCase();
      const raw = decodeBounded(response.body, encoding, size, sha256);
      verifyRaw(raw, sha256, size);
      return { raw, wireBytes: response.body.length, ...keptBody(encoding, response.body) };
    },
    async fetchPack(objects, onObject, packOptions = {}) {
      const delivered = new Set<string>();
      const sizes = new Map(objects.map((o) => [o.sha256, o.size]));
      const path = urlPath(SYNC_ROUTES.objectPack);
      try {
        const response = await pool.request({
          path,
          method: 'POST',
          headers: { ...commonHeaders, 'content-type': 'application/json' },
          // The primary's gzip variant too: checking it (gunzip) costs a fraction of recompressing it.
          body: JSON.stringify({
            objects: objects.map((o) => o.sha256),
            gzip: true,
            ...(packOptions.brotli === false ? { brotli: false } : {}),
          }),
        });
        if (response.statusCode !== 200) {
          response.body.resume();
          throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `object pack answered HTTP ${response.statusCode}`, {
            status: response.statusCode,
          });
        }
        for await (const frame of readPackFrames(response.body, sizes)) {
          if (frame.header.missing === true) continue;
          const raw = decodeBounded(frame.bytes, frame.header.encoding, frame.size, frame.header.sha256);
          verifyRaw(raw, frame.header.sha256, frame.size);
          if (frame.gzip !== undefined) verifyGzip(frame.gzip, raw, frame.header.sha256);
          // The frame's bytes are views of the received chunk; onObject is awaited before the next frame, then they are dropped.
          await onObject(frame.header.sha256, {
            raw,
            wireBytes: frame.consumed,
            ...keptBody(frame.header.encoding, frame.bytes),
            ...(frame.gzip === undefined ? {} : { gzip: frame.gzip }),
          });
          delivered.add(frame.header.sha256);
        }
        return { delivered };
      } catch (err) {
        return { delivered, error: err };
      }
    },
    async ack(body) {
      const response = await postAsMirror(SYNC_ROUTES.ack, body);
      if (response.status >= 300) {
        throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `ack of seq ${body.seq} answered HTTP ${response.status}`, {
          seq: body.seq,
          status: response.status,
        });
      }
    },
    postAsMirror,
    async close() {
      await pool.close();
    },
  };
}

/** A compressed body that decoded to the verified bytes is kept as that variant: no recompression. */
function keptBody(encoding: string, body: Buffer): { brotli?: Buffer; gzip?: Buffer } {
  if (encoding === 'br') return { brotli: body };
  if (encoding === 'gzip') return { gzip: body };
  return {};
}
