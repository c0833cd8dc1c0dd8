import { createHash } from 'node:crypto';
import { HEADERS } from '@metasync/shared';
import type { SoakPackage } from './publish-load.js';

/**
 * Composer-like clients: `workers` concurrent loops, each GETting p2 files of
 * packages that exist (and sometimes `packages.json`) round-robin over the
 * mirrors, with `Accept-Encoding` gzip, br or both, and `If-Modified-Since`
 * from an earlier answer on one request in five. fetch decodes gzip and br;
 * the decoded body must hash to the sha256 in the ETag and a p2 file must
 * hold exactly its own package.
 *
 * Outcome kinds (failures unless said otherwise):
 *   ok, not-modified               fine
 *   404-existing                   404 for a package whose first publish had returned
 *   404-link-down (excused)        same, but the mirror answered from a generation
 *                                  older than the package while its link to the
 *                                  primary was faulted: invariant 5 asks for this 404
 *   5xx, other-status, timeout, network
 *   bad-bytes                      body fails its ETag hash, or a p2 file holds another package
 *   unexpected-304                 304 without a conditional request
 */
export type OutcomeKind =
  | 'ok'
  | 'not-modified'
  | '404-existing'
  | '404-link-down'
  | '5xx'
  | 'other-status'
  | 'timeout'
  | 'network'
  | 'bad-bytes'
  | 'unexpected-304';

export const FAILURE_KINDS: readonly OutcomeKind[] = ['404-existing', '5xx', 'other-status', 'timeout', 'network', 'unexpected-304'];

export interface ClientMirror {
  url: string;
  /** Index into the fault schedule's proxies, or undefined for a direct link. */
  proxyIndex: number | undefined;
}

export interface ClientLoadOptions {
  mirrors: readonly ClientMirror[];
  packages: readonly SoakPackage[];
  workers: number;
  /** Think time between one worker's requests, so the load leaves CPU for syncing. */
  pauseMs: number;
  requestTimeoutMs: number;
  linkFaultedDuring(proxyIndex: number, fromMs: number, toMs: number): boolean;
  /** The link's fault mode now (for failure details). */
  linkMode(proxyIndex: number): string;
  random: () => number;
}

export interface ClientLoad {
  run(): Promise<void>;
  stop(): void;
  counts(): Record<OutcomeKind, number>;
  /** First failures, for the report. */
  samples(): string[];
  requests(): number;
}

const ENCODINGS = ['gzip', 'br', 'gzip, br'] as const;

export function createClientLoad(options: ClientLoadOptions): ClientLoad {
  const counts = Object.fromEntries(
    (
      [
        'ok',
        'not-modified',
        '404-existing',
        '404-link-down',
        '5xx',
        'other-status',
        'timeout',
        'network',
        'bad-bytes',
        'unexpected-304',
      ] as const
    ).map((k) => [k, 0]),
  ) as Record<OutcomeKind, number>;
  const samples: string[] = [];
  const lastModified = new Map<string, string>();
  let turn = 0;
  let stopped = false;

  const record = (kind: OutcomeKind, detail: string): void => {
    counts[kind]++;
    if (kind !== 'ok' && kind !== 'not-modified' && kind !== '404-link-down' && samples.length < 30) samples.push(`${kind}: ${detail}`);
  };

  function pickPath(): { path: string; pkg: SoakPackage | undefined; packageKey: string | undefined } {
    const { packages, random } = options;
    if (packages.length === 0 || random() < 0.05) return { path: 'packages.json', pkg: undefined, packageKey: undefined };
    // Half the picks among the newest packages: the ones a lagging mirror is likeliest to lack.
    const index = random() < 0.5 ? Math.max(0, packages.length - 1 - Math.floor(random() * 10)) : Math.floor(random() * packages.length);
    const pkg = packages[index]!;
    const dev = pkg.hasDev && random() < 0.3;
    return { path: `p2/${pkg.name}${dev ? '~dev' : ''}.json`, pkg, packageKey: pkg.name };
  }

  async function once(): Promise<void> {
    const mirror = options.mirrors[turn++ % options.mirrors.length]!;
    const { path, pkg, packageKey } = pickPath();
    // A package exists from its first publish's generation on; note it before the request.
    const existsSinceSeq = pkg?.firstSeq ?? 0;
    const headers: Record<string, string> = { 'accept-encoding': ENCODINGS[Math.floor(options.random() * ENCODINGS.length)]! };
    const since = lastModified.get(path);
    const conditional = since !== undefined && options.random() < 0.2;
    if (conditional) headers['if-modified-since'] = since;
    const where = `${mirror.url}/${path}`;
    const startedMs = Date.now();
    const modeAtStart = mirror.proxyIndex === undefined ? 'direct' : options.linkMode(mirror.proxyIndex);
    let response: Response;
    let body: Buffer;
    try {
      response = await fetch(where, { headers, signal: AbortSignal.timeout(options.requestTimeoutMs) });
      body = Buffer.from(await response.arrayBuffer());
    } catch (err) {
      const name = (err as Error).name;
      if (name === 'TimeoutError' || name === 'AbortError') record('timeout', `${where} after ${Date.now() - startedMs} ms`);
      // A body that does not decode (bad gzip/br) surfaces here as well: bad bytes, not a network error.
      else if (
        /decompress|incorrect header|unexpected end|zlib|brotli/i.test(
          `${(err as Error).message} ${String((err as { cause?: Error }).cause?.message)}`,
        )
      )
        record('bad-bytes', `${where}: ${(err as Error).message}`);
      else record('network', `${where}: ${(err as Error).message} ${String((err as { cause?: Error }).cause?.message ?? '')}`);
      return;
    }
    const status = response.status;
    if (status === 304) {
      record(conditional ? 'not-modified' : 'unexpected-304', where);
      return;
    }
    if (status === 200) {
      const etagSha = /^"([0-9a-f]{64})"$/.exec(response.headers.get('etag') ?? '')?.[1];
      const actual = createHash('sha256').update(body).digest('hex');
      if (etagSha === undefined || etagSha !== actual) {
        record('bad-bytes', `${where}: etag ${response.headers.get('etag')} body sha256 ${actual}`);
        return;
      }
      if (packageKey !== undefined && !holdsOnly(body, packageKey)) {
        record('bad-bytes', `${where}: body does not hold exactly ${packageKey}`);
        return;
      }
      const modified = response.headers.get('last-modified');
      if (modified !== null) lastModified.set(path, modified);
      record('ok', where);
      return;
    }
    if (status === 404) {
      const servedSeq = Number(response.headers.get(HEADERS.seq) ?? Number.NaN);
      const behind = !Number.isInteger(servedSeq) || servedSeq < existsSinceSeq;
      const faulted = mirror.proxyIndex !== undefined && options.linkFaultedDuring(mirror.proxyIndex, startedMs, Date.now());
      record(
        behind && faulted ? '404-link-down' : '404-existing',
        `${where} (served seq ${servedSeq}, exists since ${existsSinceSeq}, link ${faulted ? 'faulted' : 'healthy'} (${modeAtStart} -> ${mirror.proxyIndex === undefined ? 'direct' : options.linkMode(mirror.proxyIndex)}), proxied ${response.headers.get(HEADERS.proxied)}, took ${Date.now() - startedMs} ms, at ${new Date(startedMs).toISOString().slice(11, 23)})`,
      );
      return;
    }
    record(status >= 500 ? '5xx' : 'other-status', `${where}: HTTP ${status} ${body.toString('utf8').slice(0, 200)}`);
  }

  return {
    async run() {
      await Promise.all(
        Array.from({ length: options.workers }, async () => {
          while (!stopped) {
            await once();
            if (options.pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
          }
        }),
      );
    },
    stop() {
      stopped = true;
    },
    counts: () => ({ ...counts }),
    samples: () => [...samples],
    requests: () => Object.values(counts).reduce((a, b) => a + b, 0),
  };
}

function holdsOnly(body: Buffer, packageKey: string): boolean {
  try {
    const document = JSON.parse(body.toString('utf8')) as { packages?: Record<string, unknown> };
    const names = Object.keys(document.packages ?? {});
    return names.length === 1 && names[0] === packageKey;
  } catch {
    return false;
  }
}
