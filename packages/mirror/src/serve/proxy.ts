import { Pool, type Dispatcher } from 'undici';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HEADERS, assertRepoPath, sha256Hex } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import type { MirrorMetrics } from '../metrics.js';
import { primaryConnectOptions } from '../sync/primary-ca.js';

/**
 * Proxy fallback (invariant 5): a repository path the mirror's generation
 * lacks is asked of the primary, so a client never gets a 404 for something
 * that exists just because this mirror has not applied it yet.
 *
 * Safety rules:
 *   - only GET/HEAD, only a path that passed assertRepoPath, always relative to
 *     the primary's configured base URL (never a URL taken from the request);
 *   - connect and total timeouts; any failure, timeout or primary 5xx becomes
 *     404 + `Cache-Control: no-store`, never a 5xx (Composer aborts on 5xx);
 *   - a 200 whose ETag is a sha256 (the primary's convention) and whose body
 *     is small is buffered and verified before a byte is sent, so a corrupting
 *     hop cannot reach the client; other bodies stream through.
 */
export interface ProxyOptions {
  primaryUrl: string;
  connectTimeoutMs: number;
  totalTimeoutMs: number;
  metrics: MirrorMetrics;
  logger: Logger;
  /** Largest body buffered for verification. */
  maxVerifyBytes?: number;
  /** --primary-ca (sync/primary-ca.ts); a handshake it refuses is a failed fallback: 404 `no-store`. */
  ca?: Buffer | undefined;
}

export interface Proxy {
  forward(input: { path: string; query?: string; request: FastifyRequest; reply: FastifyReply; seq: number }): Promise<void>;
  close(): Promise<void>;
}

const PASSED_RESPONSE_HEADERS = [
  'content-type',
  'content-encoding',
  'content-length',
  'etag',
  'last-modified',
  'cache-control',
  'vary',
] as const;
const SHA256_ETAG = /^"([0-9a-f]{64})"$/;

export function createProxy(options: ProxyOptions): Proxy {
  const base = new URL(options.primaryUrl);
  const basePath = base.pathname.replace(/\/+$/, '');
  const pool = new Pool(base.origin, {
    connections: 16,
    connect: primaryConnectOptions(options.connectTimeoutMs, options.ca),
    headersTimeout: options.totalTimeoutMs,
    bodyTimeout: options.totalTimeoutMs,
  });
  const maxVerifyBytes = options.maxVerifyBytes ?? 8 * 1024 * 1024;
  const { metrics, logger } = options;

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

  return {
    async forward({ path, query = '', request, reply, seq }) {
      const method = request.method === 'HEAD' ? 'HEAD' : 'GET';
      const headers: Record<string, string> = {};
      const accept = request.headers['accept-encoding'];
      if (typeof accept === 'string') headers['accept-encoding'] = accept.slice(0, 200);
      for (const name of ['if-none-match', 'if-modified-since'] as const) {
        const value = request.headers[name];
        if (typeof value === 'string') headers[name] = value.slice(0, 200);
      }
      const target = `${basePath}/${assertRepoPath(path)}${query === '' ? '' : `?${query}`}`;
      let response: Dispatcher.ResponseData | undefined;
      const signal = AbortSignal.timeout(options.totalTimeoutMs);
      // Two attempts within one total budget: a pooled keep-alive connection the
      // primary (or a hop) closed while idle fails at once with a socket error,
      // and a fresh connection then usually succeeds. A timeout is not retried.
      for (let attempt = 1; attempt <= 2 && response === undefined; attempt++) {
        try {
          response = await pool.request({ path: target, method, headers, signal });
        } catch (err) {
          logger.debug({ err, path, attempt }, 'proxy fallback failed');
          if (signal.aborted || attempt === 2) {
            await notFound(reply, 'unreachable', seq);
            return;
          }
        }
      }
      if (response === undefined) return;
      const status = response.statusCode;
      if (status !== 200 && status !== 304) {
        response.body.resume();
        await notFound(reply, status === 404 ? 'not-found' : `status-${status}`, seq);
        return;
      }
      reply.code(status).header(HEADERS.proxied, '1').header(HEADERS.seq, String(seq));
      for (const name of PASSED_RESPONSE_HEADERS) {
        const value = response.headers[name];
        if (typeof value === 'string') reply.header(name, value);
      }
      reply.header('cache-control', 'no-store');
      const etagHash = SHA256_ETAG.exec(String(response.headers.etag ?? ''))?.[1];
      const length = Number(response.headers['content-length'] ?? Number.NaN);
      if (status === 304 || method === 'HEAD') {
        response.body.resume();
        metrics.proxied.inc({ outcome: String(status) });
        metrics.responses.inc({ source: 'proxy', status: String(status) });
        await reply.send();
        return;
      }
      if (etagHash === undefined || length > maxVerifyBytes) {
        metrics.proxied.inc({ outcome: 'streamed' });
        metrics.responses.inc({ source: 'proxy', status: '200' });
        await reply.send(response.body);
        return;
      }
      let body: Buffer;
      try {
        const chunks: Buffer[] = [];
        let total = 0;
        for await (const chunk of response.body) {
          total += (chunk as Buffer).length;
          if (total > maxVerifyBytes) throw new Error(`proxied body exceeds ${maxVerifyBytes} bytes`);
          chunks.push(chunk as Buffer);
        }
        body = Buffer.concat(chunks, total);
        const decoded = decode(body, String(response.headers['content-encoding'] ?? 'identity'), maxVerifyBytes);
        if (sha256Hex(decoded) !== etagHash) throw new Error(`proxied body does not hash to its etag ${etagHash}`);
      } catch (err) {
        logger.warn({ err, path }, 'proxied body rejected');
        reply
          .removeHeader('etag')
          .removeHeader('last-modified')
          .removeHeader('content-encoding')
          .removeHeader('content-type')
          .removeHeader('content-length')
          .removeHeader('vary');
        await notFound(reply, 'rejected', seq);
        return;
      }
      metrics.proxied.inc({ outcome: 'verified' });
      metrics.responses.inc({ source: 'proxy', status: '200' });
      await reply.send(body);
    },
    async close() {
      await pool.close();
    },
  };
}

function decode(body: Buffer, encoding: string, maxBytes: number): Buffer {
  const name = encoding.trim().toLowerCase();
  if (name === 'br') return brotliDecompressSync(body, { maxOutputLength: maxBytes });
  if (name === 'gzip') return gunzipSync(body, { maxOutputLength: maxBytes });
  if (name === 'identity' || name === '') return body;
  throw new Error(`unsupported content-encoding ${name}`);
}
