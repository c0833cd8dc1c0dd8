/**
 * GETs against the followed upstream, over one undici Agent (a keep-alive pool
 * of at most `concurrency` connections per origin):
 *
 *   request -> 200/304/404/4xx: returned to the caller (the change feed's 400 carries its timestamp)
 *           -> 429, 5xx, timeout, connection closed mid-answer, truncated or undecodable body: wait, retry
 *              (Retry-After when the upstream sends one, else exponential backoff with jitter)
 *           -> still failing after `maxAttempts`: METASYNC_ERR_UPSTREAM_UNREACHABLE
 *
 * Bodies are decoded here (gzip, br), so callers see the bytes the upstream
 * meant, and capped at `maxBodyBytes` (a runaway body is not held in memory).
 */
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
import { metasyncError } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import { Agent, request } from 'undici';

export interface UpstreamResponse {
  status: number;
  body: Buffer;
  /** The Last-Modified header in ms since the epoch; undefined when absent or unparsable. */
  lastModifiedMs: number | undefined;
}

export interface UpstreamHttp {
  get(url: string, options?: { ifModifiedSinceMs?: number | undefined; signal?: AbortSignal | undefined }): Promise<UpstreamResponse>;
  close(): Promise<void>;
}

export interface UpstreamHttpOptions {
  concurrency: number;
  timeoutMs: number;
  log: Logger;
  maxAttempts?: number;
  /** First backoff step; doubles per attempt up to `maxBackoffMs`. */
  retryBaseMs?: number;
  maxBackoffMs?: number;
  /** A Retry-After longer than this is cut to it, so one answer cannot park the follower for hours. */
  maxRetryAfterMs?: number;
  maxBodyBytes?: number;
  /** Called before each retry with why (`status-503`, `timeout`, `truncated`...), for metrics. */
  onRetry?: (reason: string) => void;
}

export const USER_AGENT = 'metasync-primary (upstream follower; +https://github.com/metasync)';
const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;

class RetryableError extends Error {
  constructor(
    readonly reason: string,
    readonly retryAfterMs: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** Retry-After as seconds or an HTTP date; undefined when absent or unparsable. */
export function parseRetryAfterMs(value: string | string[] | undefined, nowMs: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function decode(raw: Buffer, encoding: string | undefined, maxBytes: number, url: string): Buffer {
  const coding = (encoding ?? 'identity').trim().toLowerCase();
  try {
    if (coding === 'gzip' || coding === 'x-gzip') return gunzipSync(raw, { maxOutputLength: maxBytes });
    if (coding === 'br') return brotliDecompressSync(raw, { maxOutputLength: maxBytes });
  } catch (err) {
    // A body cut short in transit fails to inflate: the same fault as a short identity body.
    throw new RetryableError('truncated', undefined, `body of ${url} does not decode as ${coding}: ${(err as Error).message}`);
  }
  if (coding !== 'identity') throw new RetryableError('encoding', undefined, `${url} answered an unasked content-encoding ${coding}`);
  return raw;
}

export function createUpstreamHttp(options: UpstreamHttpOptions): UpstreamHttp {
  const agent = new Agent({
    connections: options.concurrency,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    connectTimeout: options.timeoutMs,
  });
  const maxAttempts = options.maxAttempts ?? 4;
  const retryBaseMs = options.retryBaseMs ?? 250;
  const maxBackoffMs = options.maxBackoffMs ?? 15_000;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;

  async function attempt(url: string, ifModifiedSinceMs: number | undefined, signal: AbortSignal | undefined): Promise<UpstreamResponse> {
    const headers: Record<string, string> = { 'accept-encoding': 'gzip, br', 'user-agent': USER_AGENT, accept: 'application/json' };
    if (ifModifiedSinceMs !== undefined) headers['if-modified-since'] = new Date(ifModifiedSinceMs).toUTCString();
    let response;
    try {
      response = await request(url, { method: 'GET', headers, dispatcher: agent, signal });
    } catch (err) {
      if (signal?.aborted === true) throw err;
      const code = (err as { code?: string }).code ?? 'network';
      // UND_ERR_SOCKET: the connection closed mid-answer (a body cut short often shows up here, before the body is read).
      const reason = code.includes('TIMEOUT') ? 'timeout' : code === 'UND_ERR_SOCKET' ? 'closed' : 'network';
      throw new RetryableError(reason, undefined, `GET ${url} failed: ${(err as Error).message}`);
    }
    const status = response.statusCode;
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > maxBodyBytes) {
          response.body.destroy();
          throw metasyncError('METASYNC_ERR_UPSTREAM_INVALID', `${url} answered more than ${maxBodyBytes} bytes`, { url, maxBodyBytes });
        }
        chunks.push(chunk);
      }
    } catch (err) {
      if (signal?.aborted === true || (err as { code?: string }).code === 'METASYNC_ERR_UPSTREAM_INVALID') throw err;
      const code = (err as { code?: string }).code ?? '';
      throw new RetryableError(
        code.includes('TIMEOUT') ? 'timeout' : 'truncated',
        undefined,
        `body of ${url} was cut: ${(err as Error).message}`,
      );
    }
    if (status === 429 || status >= 500) {
      throw new RetryableError(
        `status-${status}`,
        parseRetryAfterMs(response.headers['retry-after'], Date.now()),
        `${url} answered ${status}`,
      );
    }
    const raw = Buffer.concat(chunks);
    const body = status === 304 ? raw : decode(raw, headerText(response.headers['content-encoding']), maxBodyBytes, url);
    const lastModified = headerText(response.headers['last-modified']);
    const parsed = lastModified === undefined ? Number.NaN : Date.parse(lastModified);
    return { status, body, lastModifiedMs: Number.isNaN(parsed) ? undefined : parsed };
  }

  return {
    async get(url, getOptions = {}) {
      let last: RetryableError | undefined;
      for (let n = 0; n < maxAttempts; n++) {
        try {
          return await attempt(url, getOptions.ifModifiedSinceMs, getOptions.signal);
        } catch (err) {
          if (!(err instanceof RetryableError)) throw err;
          last = err;
          if (n === maxAttempts - 1) break;
          const backoffMs = Math.min(maxBackoffMs, retryBaseMs * 2 ** n) * (0.5 + Math.random() / 2);
          const waitMs = err.retryAfterMs === undefined ? backoffMs : Math.min(maxRetryAfterMs, err.retryAfterMs);
          options.onRetry?.(err.reason);
          options.log.debug({ url, reason: err.reason, attempt: n + 1, waitMs: Math.round(waitMs) }, 'upstream request retried');
          await sleep(waitMs, undefined, getOptions.signal === undefined ? {} : { signal: getOptions.signal });
        }
      }
      throw metasyncError(
        'METASYNC_ERR_UPSTREAM_UNREACHABLE',
        `GET ${url} kept failing after ${maxAttempts} attempts: ${last?.message ?? 'unknown'}`,
        { url, reason: last?.reason, attempts: maxAttempts },
      );
    },
    close: () => agent.close(),
  };
}
