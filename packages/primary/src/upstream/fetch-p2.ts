/**
 * Fetches one upstream p2 file and decides what it means for our copy:
 *
 *   200 + checked JSON for this package -> content (the bytes as served)
 *   200 older than the action announced  -> wait `lagRetryMs`, ask again (the upstream's CDN can lag);
 *                                           still older after `lagRetries`: METASYNC_ERR_UPSTREAM_LAGGING
 *   304 (we asked If-Modified-Since)      -> unchanged
 *   404 / 410                             -> missing (the file is gone upstream)
 *   anything else                         -> METASYNC_ERR_UPSTREAM_INVALID
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { metasyncError } from '@metasync/shared';
import { checkUpstreamP2 } from './documents.js';
import type { UpstreamHttp } from './http-client.js';

export interface P2Request {
  /** `vendor/name` or `vendor/name~dev`. */
  key: string;
  /** The change feed's action time (unix s): a Last-Modified before it is an old copy. */
  minTimeS?: number | undefined;
  /** Ask conditionally: our copy is known current up to this instant. */
  ifModifiedSinceMs?: number | undefined;
}

export type P2Outcome = { kind: 'content'; content: Buffer } | { kind: 'unchanged' } | { kind: 'missing' };

export interface FetchP2Options {
  http: UpstreamHttp;
  /** Absolute template with `%package%`. */
  metadataUrl: string;
  lagRetries: number;
  lagRetryMs: number;
  signal?: AbortSignal | undefined;
}

export function p2UrlOf(metadataUrl: string, key: string): string {
  // Keys are validated Composer names plus `~dev`: nothing in them needs escaping.
  return metadataUrl.replace('%package%', key);
}

export async function fetchP2(request: P2Request, options: FetchP2Options): Promise<P2Outcome> {
  const url = p2UrlOf(options.metadataUrl, request.key);
  for (let attempt = 0; ; attempt++) {
    const response = await options.http.get(url, { ifModifiedSinceMs: request.ifModifiedSinceMs, signal: options.signal });
    if (response.status === 404 || response.status === 410) return { kind: 'missing' };
    if (response.status === 304 && request.ifModifiedSinceMs !== undefined) return { kind: 'unchanged' };
    if (response.status !== 200) {
      throw metasyncError('METASYNC_ERR_UPSTREAM_INVALID', `${url} answered ${response.status}`, {
        url,
        reason: `status-${response.status}`,
      });
    }
    const modifiedS = response.lastModifiedMs === undefined ? undefined : Math.floor(response.lastModifiedMs / 1000);
    if (request.minTimeS !== undefined && modifiedS !== undefined && modifiedS < request.minTimeS) {
      if (attempt >= options.lagRetries) {
        throw metasyncError(
          'METASYNC_ERR_UPSTREAM_LAGGING',
          `${url} still Last-Modified ${modifiedS}, before the announced update at ${request.minTimeS}, after ${attempt + 1} tries`,
          { url, lastModifiedS: modifiedS, expectedS: request.minTimeS },
        );
      }
      await sleep(options.lagRetryMs, undefined, options.signal === undefined ? {} : { signal: options.signal });
      continue;
    }
    checkUpstreamP2(request.key, response.body, url);
    return { kind: 'content', content: response.body };
  }
}
