/**
 * One archive download: GET the dist URL (redirects followed, each hop checked
 * by origin-guard.ts), stream the body into a temp file of the archive store
 * while hashing it (sha256 for the address and the pin, sha1 for Composer's
 * `shasum`), refuse it past `maxBytes` or `timeoutMs`. Nothing is kept in memory.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import { hasErrno, metasyncError } from '@metasync/shared';
import { checkOriginUrl, type OriginPolicy } from './origin-guard.js';

export interface FetchedArchive {
  /** The temp file holding the bytes (the caller renames or removes it). */
  tmpPath: string;
  sha256: string;
  sha1: string;
  size: number;
  /** The URL the bytes came from after redirects. */
  finalUrl: string;
}

export interface ArchiveFetchOptions {
  url: string;
  dispatcher: Dispatcher;
  policy: OriginPolicy;
  maxBytes: number;
  timeoutMs: number;
  tmpPath: string;
  maxRedirects?: number;
  /** Headers sent on every hop (e.g. a User-Agent). */
  headers?: Record<string, string>;
}

export const DEFAULT_MAX_REDIRECTS = 5;

/** Drops a body not wanted (a redirect's, an error's): undici reports the destroy as an error, which is expected here. */
function discard(response: Dispatcher.ResponseData): void {
  response.body.on('error', () => undefined);
  response.body.destroy();
}

function failed(url: string, why: string, cause?: unknown) {
  return metasyncError('METASYNC_ERR_DIST_FETCH_FAILED', `fetching ${url.slice(0, 200)}: ${why}`, { url: url.slice(0, 200) }, cause);
}

export async function fetchArchive(options: ArchiveFetchOptions): Promise<FetchedArchive> {
  // Aborted only while the fetch runs: a signal that fired after undici finished would surface as an unhandled error.
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs);
  try {
    return await fetchWithin(options, controller.signal);
  } finally {
    clearTimeout(timer);
  }
}

async function fetchWithin(options: ArchiveFetchOptions, signal: AbortSignal): Promise<FetchedArchive> {
  let url = options.url;
  const maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  for (let hop = 0; ; hop++) {
    const target = checkOriginUrl(url, options.policy);
    let response: Dispatcher.ResponseData;
    try {
      response = await options.dispatcher.request({
        origin: target.origin,
        path: `${target.pathname}${target.search}`,
        method: 'GET',
        headers: { 'user-agent': 'metasync-mirror', 'accept-encoding': 'identity', ...options.headers },
        signal,
      });
    } catch (err) {
      throw failed(url, signal.aborted ? `no answer within ${options.timeoutMs} ms` : (err as Error).message, err);
    }
    const { statusCode } = response;
    if (statusCode >= 300 && statusCode < 400 && statusCode !== 304) {
      discard(response);
      const location = response.headers.location;
      if (typeof location !== 'string') throw failed(url, `redirect ${statusCode} without a Location`);
      if (hop >= maxRedirects) throw failed(options.url, `more than ${maxRedirects} redirects`);
      url = new URL(location, target).href;
      continue;
    }
    if (statusCode !== 200) {
      discard(response);
      throw failed(url, `answered ${statusCode}`);
    }
    const declared = Number(response.headers['content-length'] ?? Number.NaN);
    if (declared > options.maxBytes) {
      discard(response);
      throw metasyncError(
        'METASYNC_ERR_DIST_TOO_LARGE',
        `${url.slice(0, 200)} declares ${declared} bytes, over --dist-max-bytes ${options.maxBytes}`,
        {
          url: url.slice(0, 200),
          limit: options.maxBytes,
        },
      );
    }
    return await receive(response, { ...options, url, signal });
  }
}

async function receive(response: Dispatcher.ResponseData, options: ArchiveFetchOptions & { signal: AbortSignal }): Promise<FetchedArchive> {
  const sha256 = createHash('sha256');
  const sha1 = createHash('sha1');
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      if (size > options.maxBytes) {
        done(
          metasyncError('METASYNC_ERR_DIST_TOO_LARGE', `${options.url.slice(0, 200)} exceeds --dist-max-bytes ${options.maxBytes}`, {
            url: options.url.slice(0, 200),
            limit: options.maxBytes,
          }),
        );
        return;
      }
      sha256.update(chunk);
      sha1.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(response.body, meter, createWriteStream(options.tmpPath, { flags: 'wx' }), { signal: options.signal });
  } catch (err) {
    await unlink(options.tmpPath).catch((unlinkErr: unknown) => {
      if (!hasErrno(unlinkErr, 'ENOENT')) throw unlinkErr;
    });
    if ((err as { code?: string }).code === 'METASYNC_ERR_DIST_TOO_LARGE') throw err;
    throw failed(options.url, options.signal.aborted ? `not received within ${options.timeoutMs} ms` : (err as Error).message, err);
  }
  return { tmpPath: options.tmpPath, sha256: sha256.digest('hex'), sha1: sha1.digest('hex'), size, finalUrl: options.url };
}
