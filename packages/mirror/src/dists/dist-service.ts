/**
 * An archive for `/dists/<package>/<reference>.<type>`: from the cache, else
 * fetched once however many clients ask at the same time.
 *
 *   cached ─────────────────────────────────────────────────────────────> serve
 *   miss: dist in the metadata? ── no ──> 404 (Composer uses the dist url)
 *         pinned already, by another mirror? ──> its bytes from that mirror, sha256 checked
 *         else the origin (origin-guard, size cap, timeout) ──> shasum (sha1) checked if the metadata has one
 *              not pinned yet ──> report to the primary, which answers the pin in force (first report wins)
 *              bytes != pin ──> counted, logged, refused; the pinning mirror's bytes if it has them, else 502
 *         store (durable) ──> serve
 *
 * Only pinned bytes are ever stored, so a cache hit needs no check: a pin never changes.
 */
import { unlink } from 'node:fs/promises';
import PQueue from 'p-queue';
import type { Dispatcher } from 'undici';
import { hasErrno, isMetasyncError, metasyncError, type DistKey, type DistPin } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import type { ObjectStore } from '@metasync/store';
import type { IndexView } from '../index/index-state.js';
import type { PrimaryClient } from '../sync/primary-client.js';
import type { ArchiveEntry, ArchiveStore } from './archive-store.js';
import type { DistMetrics } from './dist-metrics.js';
import { lookupDist } from './dist-lookup.js';
import { readPin, reportPin } from './dist-pins.js';
import { fetchArchive, type FetchedArchive } from './origin-fetch.js';
import type { OriginPolicy } from './origin-guard.js';

/** Sent on a fetch from the mirror that pinned an archive: that mirror then asks no peer in turn (no chains, no loops). */
export const PEER_HEADER = 'x-metasync-dist-peer';

export interface DistServiceOptions {
  index: IndexView;
  store: ObjectStore;
  archives: ArchiveStore;
  /** For origins: its lookup refuses private addresses (origin-guard.ts). */
  originAgent: Dispatcher;
  /** For other mirrors of the fleet, named by signed pins (often on private addresses). */
  peerAgent: Dispatcher;
  policy: OriginPolicy;
  maxBytes: number;
  timeoutMs: number;
  concurrency: number;
  client: Pick<PrimaryClient, 'postAsMirror'>;
  /** This mirror's public base URL: the `source` of the pins it reports. */
  publicUrl: () => string;
  metrics: DistMetrics;
  logger: Logger;
}

export interface DistService {
  /** The archive `key` names, fetched and pinned on a miss; rejects with a METASYNC_ERR_DIST_* error. */
  obtain(key: DistKey, options: { fromPeer: boolean }): Promise<ArchiveEntry>;
  /** Drops a cached archive whose file was found missing. */
  forget(key: DistKey): Promise<void>;
}

export function distName(key: DistKey): string {
  return `${key.package}/${key.reference}.${key.type}`;
}

export function createDistService(options: DistServiceOptions): DistService {
  const { archives, metrics, logger } = options;
  const queue = new PQueue({ concurrency: options.concurrency });
  const inFlight = new Map<string, Promise<ArchiveEntry>>();

  async function discard(fetched: FetchedArchive): Promise<void> {
    await unlink(fetched.tmpPath).catch((err: unknown) => {
      if (!hasErrno(err, 'ENOENT')) throw err;
    });
  }

  async function fetchCounted(from: 'origin' | 'peer', run: () => Promise<FetchedArchive>): Promise<FetchedArchive> {
    try {
      const fetched = await run();
      metrics.fetches.inc({ from, outcome: 'ok' });
      return fetched;
    } catch (err) {
      metrics.fetches.inc({ from, outcome: isMetasyncError(err) ? err.code.replace('METASYNC_ERR_DIST_', '').toLowerCase() : 'error' });
      throw err;
    }
  }

  /** The pinned bytes from the mirror that pinned them; undefined when it cannot give them. */
  async function fromPinningMirror(key: DistKey, pin: DistPin, shasum: string | undefined): Promise<ArchiveEntry | undefined> {
    const source = pin.source;
    if (source === undefined || source.replace(/\/+$/, '') === options.publicUrl().replace(/\/+$/, '')) return undefined;
    const url = `${source.replace(/\/+$/, '')}/dists/${distName(key)}`;
    let fetched: FetchedArchive;
    try {
      fetched = await fetchCounted('peer', () =>
        fetchArchive({
          url,
          dispatcher: options.peerAgent,
          policy: { allowHosts: [new URL(url).hostname.replace(/^\[(.*)\]$/, '$1')], allowPrivate: true },
          maxBytes: options.maxBytes,
          timeoutMs: options.timeoutMs,
          tmpPath: archives.tmpPath(),
          maxRedirects: 0,
          headers: { [PEER_HEADER]: '1' },
        }),
      );
    } catch (err) {
      logger.warn({ err, archive: distName(key), source }, 'pinned archive not available from the pinning mirror');
      return undefined;
    }
    if (fetched.sha256 !== pin.sha256 || (shasum !== undefined && fetched.sha1 !== shasum)) {
      metrics.pinMismatches.inc();
      logger.error(
        { archive: distName(key), source, pinned: pin.sha256, got: fetched.sha256 },
        'pinning mirror served other bytes than its pin',
      );
      await discard(fetched);
      return undefined;
    }
    return archives.commit(distName(key), fetched);
  }

  async function fill(key: DistKey, fromPeer: boolean): Promise<ArchiveEntry> {
    const name = distName(key);
    const source = await lookupDist({ index: options.index, store: options.store, key });
    if (source === undefined) {
      throw metasyncError('METASYNC_ERR_DIST_NOT_FOUND', `no dist ${name} in the metadata of generation ${options.index.seq}`, {
        archive: name,
      });
    }
    let pin = await readPin({ index: options.index, store: options.store, key });
    let triedPeer = false;
    if (pin !== undefined && !fromPeer) {
      triedPeer = true;
      const entry = await fromPinningMirror(key, pin, source.shasum);
      if (entry !== undefined) return entry;
    }
    const fetched = await fetchCounted('origin', () =>
      fetchArchive({
        url: source.url,
        dispatcher: options.originAgent,
        policy: options.policy,
        maxBytes: options.maxBytes,
        timeoutMs: options.timeoutMs,
        tmpPath: archives.tmpPath(),
      }),
    );
    let committed = false;
    try {
      if (source.shasum !== undefined && fetched.sha1 !== source.shasum) {
        throw metasyncError(
          'METASYNC_ERR_DIST_CHECKSUM_MISMATCH',
          `${source.url} answered bytes with sha1 ${fetched.sha1}, the metadata says ${source.shasum}`,
          {
            archive: name,
            expected: source.shasum,
            got: fetched.sha1,
          },
        );
      }
      if (pin === undefined) {
        const answer = await reportPin(options.client, {
          package: key.package,
          reference: key.reference,
          type: key.type,
          sha256: fetched.sha256,
          size: fetched.size,
          source: options.publicUrl(),
        });
        pin = answer.pin;
        if (answer.created)
          logger.info({ archive: name, sha256: fetched.sha256, size: fetched.size, seq: answer.seq }, 'dist archive pinned');
      }
      if (pin.sha256 !== fetched.sha256) {
        metrics.pinMismatches.inc();
        logger.warn(
          { archive: name, url: source.url, pinned: pin.sha256, got: fetched.sha256 },
          'origin bytes differ from the pinned archive; refused',
        );
        const entry = triedPeer || fromPeer ? undefined : await fromPinningMirror(key, pin, source.shasum);
        if (entry !== undefined) return entry;
        throw metasyncError(
          'METASYNC_ERR_DIST_PIN_MISMATCH',
          `${source.url} now answers bytes with sha256 ${fetched.sha256}, but ${name} is pinned to ${pin.sha256}, which this mirror cannot get`,
          { archive: name, expected: pin.sha256, got: fetched.sha256 },
        );
      }
      const entry = await archives.commit(name, fetched);
      committed = true;
      return entry;
    } finally {
      if (!committed) await discard(fetched);
      metrics.cacheBytes.set(archives.totalBytes());
    }
  }

  return {
    obtain(key, { fromPeer }) {
      const name = distName(key);
      const cached = archives.get(name);
      if (cached !== undefined) return Promise.resolve(cached);
      const running = inFlight.get(name);
      if (running !== undefined) return running;
      const attempt = queue.add(() => fill(key, fromPeer)).finally(() => inFlight.delete(name));
      inFlight.set(name, attempt);
      return attempt;
    },
    forget: (key) => archives.forget(distName(key)),
  };
}
