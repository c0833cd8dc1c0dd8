import { Pool, type Dispatcher } from 'undici';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  HEADERS,
  assertRepoPath,
  cacheControlFor,
  contentTypeFor,
  etagFor,
  formatHttpDate,
  isMetasyncError,
  isNotModified,
  type ProxyAnswerFields,
  type PublicKeyInfo,
} from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import type { MirrorMetrics } from '../metrics.js';
import { primaryConnectOptions } from '../sync/primary-ca.js';
import { judgeProxyAnswer, type ProxyRefusalReason, type ProxyVerdict } from './proxy-verdict.js';

/**
 * Proxy fallback (invariant 5): a repository path the mirror's generation
 * lacks is asked of the primary, so a client never gets a 404 for something
 * that exists just because this mirror has not applied it yet. Invariant 1
 * holds here too: a byte reaches the client only once the primary vouched for it.
 *
 *   GET <primary>/<path>, Accept-Encoding: identity (no conditionals: a 304 vouches for nothing)
 *     -> status 404 / other / unreachable ─────────────> 404 no-store
 *     -> 200: buffer <= maxBodyBytes (decode if a hop encoded it) ──> else 404 no-store 'too-large'
 *     -> judgeProxyAnswer (signature by a trusted key over path, sha256, seq, mtime;
 *        path == asked; seq >= applied when asked; sha256(body) == signed) ──> else 404 no-store
 *     -> the mirror's own answer from the verified fields: ETag, Last-Modified, Content-Type
 *        and Cache-Control as its store answers have, 304 on a matching conditional, identity body
 *
 * Refusals count in metasync_mirror_proxy_refused_total{reason} and log a warning with the path.
 * Safety rules kept from before: only GET/HEAD (HEAD is fetched as GET, so it is verified too),
 * only a path that passed assertRepoPath, always relative to the configured primary URL; connect
 * and total timeouts; never a 5xx (Composer aborts on one).
 * Buffered, not streamed as the reference design sketches: no byte may leave before the hash
 * of the whole body is checked, and --proxy-max-body-bytes bounds what one request holds.
 * The body goes out identity-encoded: the store's precompressed variants do not exist for a
 * path the mirror lacks, and compressing per request is not worth it for a path the next
 * applied generation serves from the store.
 */
export interface ProxyOptions {
  primaryUrl: string;
  connectTimeoutMs: number;
  totalTimeoutMs: number;
  /** Largest body (identity-encoded) buffered for verification; a larger one is a 404. */
  maxBodyBytes: number;
  /** The keys the mirror trusts (sync/trusted-keys.ts): known() without pinning, verifying() to follow a rotation. */
  trust: ProxyTrust;
  metrics: MirrorMetrics;
  logger: Logger;
  /** --primary-ca (sync/primary-ca.ts); a handshake it refuses is a failed fallback: 404 `no-store`. */
  ca?: Buffer | undefined;
}

export interface ProxyTrust {
  /** Undefined while nothing is pinned (trust on first use before the first sync). */
  known(): Promise<readonly PublicKeyInfo[] | undefined>;
  verifying<T>(verify: (keys: readonly PublicKeyInfo[]) => T): Promise<T>;
}

export interface Proxy {
  forward(input: { path: string; query?: string; request: FastifyRequest; reply: FastifyReply; seq: number }): Promise<void>;
  close(): Promise<void>;
}

type Fetched = { body: Buffer } | { refused: ProxyRefusalReason; message: string } | { outcome: string };

export function createProxy(options: ProxyOptions): Proxy {
  const base = new URL(options.primaryUrl);
  const basePath = base.pathname.replace(/\/+$/, '');
  const pool = new Pool(base.origin, {
    connections: 16,
    connect: primaryConnectOptions(options.connectTimeoutMs, options.ca),
    headersTimeout: options.totalTimeoutMs,
    bodyTimeout: options.totalTimeoutMs,
  });
  const { metrics, logger, maxBodyBytes, trust } = options;

  async function notFound(reply: FastifyReply, outcome: string, seq: number): Promise<void> {
    metrics.proxied.inc({ outcome });
    metrics.notFound.inc();
    metrics.responses.inc({ source: 'proxy', status: '404' });
    await reply
      .code(404)
      .header('cache-control', 'no-store')
      .header(HEADERS.proxied, outcome)
      .header(HEADERS.seq, String(seq))
      .send({ code: 'METASYNC_ERR_PATH_NOT_FOUND', message: 'no such path in the repository' });
  }

  async function refuse(reply: FastifyReply, input: { path: string; seq: number; reason: ProxyRefusalReason; message: string }) {
    metrics.proxyRefused.inc({ reason: input.reason });
    logger.warn({ path: input.path, reason: input.reason, detail: input.message }, 'refused proxied answer');
    await notFound(reply, 'refused', input.seq);
  }

  /** GET with one retry: a pooled keep-alive connection closed while idle fails at once, a fresh one usually succeeds. */
  async function fetchUpstream(target: string, path: string, signal: AbortSignal): Promise<Dispatcher.ResponseData | undefined> {
    for (let attempt = 1; attempt <= 2; attempt++) {
      try {
        return await pool.request({ path: target, method: 'GET', headers: { 'accept-encoding': 'identity' }, signal });
      } catch (err) {
        logger.debug({ err, path, attempt }, 'proxy fallback failed');
        if (signal.aborted) return undefined;
      }
    }
    return undefined;
  }

  async function readBody(response: Dispatcher.ResponseData, path: string): Promise<Fetched> {
    const declared = Number(response.headers['content-length'] ?? Number.NaN);
    if (declared > maxBodyBytes) {
      response.body.destroy();
      return { refused: 'too-large', message: `answer for ${path} declares ${declared} bytes, over ${maxBodyBytes}` };
    }
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of response.body) {
        total += (chunk as Buffer).length;
        if (total > maxBodyBytes) {
          response.body.destroy();
          return { refused: 'too-large', message: `answer for ${path} exceeds ${maxBodyBytes} bytes` };
        }
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      logger.debug({ err, path }, 'proxy fallback body failed');
      return { outcome: 'unreachable' };
    }
    const encoding = String(response.headers['content-encoding'] ?? 'identity')
      .trim()
      .toLowerCase();
    try {
      return { body: decode(Buffer.concat(chunks, total), encoding, maxBodyBytes) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
        return { refused: 'too-large', message: `answer for ${path} decodes to over ${maxBodyBytes} bytes` };
      return { refused: 'encoding', message: `answer for ${path} in content-encoding ${encoding.slice(0, 40)}: ${(err as Error).message}` };
    }
  }

  async function judge(input: { path: string; headers: Record<string, unknown>; body: Buffer; seq: number }): Promise<ProxyVerdict> {
    if ((await trust.known()) === undefined)
      return { ok: false, reason: 'no-trusted-key', message: 'no primary key is pinned yet (trust on first use before the first sync)' };
    try {
      return await trust.verifying((keys) => {
        const verdict = judgeProxyAnswer({ ...input, keys, appliedSeq: input.seq, nowMs: Date.now() });
        // Thrown so key trust can follow an endorsed rotation to a key it has not seen, then judge again.
        if (!verdict.ok && verdict.reason === 'unknown-key' && verdict.error !== undefined) throw verdict.error;
        return verdict;
      });
    } catch (err) {
      if (!isMetasyncError(err, 'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY')) throw err;
      return { ok: false, reason: 'unknown-key', message: err.message };
    }
  }

  function answerVerified(request: FastifyRequest, reply: FastifyReply, signed: ProxyAnswerFields, body: Buffer, seq: number) {
    const etag = etagFor(signed.sha256);
    reply
      .header(HEADERS.proxied, '1')
      .header(HEADERS.seq, String(seq))
      .header('etag', etag)
      .header('last-modified', formatHttpDate(signed.mtime))
      .header('cache-control', cacheControlFor(signed.path))
      .header('vary', 'Accept-Encoding');
    if (isNotModified(request.headers, { etag, lastModifiedMs: signed.mtime })) {
      metrics.proxied.inc({ outcome: '304' });
      metrics.responses.inc({ source: 'proxy', status: '304' });
      return reply.code(304).send();
    }
    metrics.proxied.inc({ outcome: 'verified' });
    metrics.responses.inc({ source: 'proxy', status: '200' });
    reply.code(200).header('content-type', contentTypeFor(signed.path)).header('content-length', String(body.length));
    return request.method === 'HEAD' ? reply.send() : reply.send(body);
  }

  return {
    async forward({ path, query = '', request, reply, seq }) {
      const target = `${basePath}/${assertRepoPath(path)}${query === '' ? '' : `?${query}`}`;
      const signal = AbortSignal.timeout(options.totalTimeoutMs);
      const response = await fetchUpstream(target, path, signal);
      if (response === undefined) return notFound(reply, 'unreachable', seq);
      // Every way out below may destroy the body; its abort error is expected, and must not go unhandled.
      response.body.on('error', ignoreError);
      const status = response.statusCode;
      if (status !== 200) {
        response.body.destroy();
        return notFound(reply, status === 404 ? 'not-found' : `status-${status}`, seq);
      }
      const fetched = await readBody(response, path);
      if ('outcome' in fetched) return notFound(reply, fetched.outcome, seq);
      if ('refused' in fetched) return refuse(reply, { path, seq, reason: fetched.refused, message: fetched.message });
      const verdict = await judge({ path, headers: response.headers, body: fetched.body, seq });
      if (!verdict.ok) return refuse(reply, { path, seq, reason: verdict.reason, message: verdict.message });
      await answerVerified(request, reply, verdict.signed, fetched.body, seq);
    },
    async close() {
      await pool.close();
    },
  };
}

function ignoreError(): void {}

/** A hop may encode what the mirror asked identity for: decode it (bounded) rather than refuse a genuine answer. */
function decode(body: Buffer, encoding: string, maxBytes: number): Buffer {
  if (encoding === 'identity' || encoding === '') return body;
  if (encoding === 'br') return brotliDecompressSync(body, { maxOutputLength: maxBytes });
  if (encoding === 'gzip') return gunzipSync(body, { maxOutputLength: maxBytes });
  throw new Error('unsupported content-encoding');
}
