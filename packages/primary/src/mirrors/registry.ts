import type { AckRequest, MirrorStatus, MirrorsResponse } from '@metasync/shared';
import type { Journal } from '../journal/journal.js';

/**
 * Every enrolled mirror the primary has heard of (by an authenticated ack or
 * events stream: routes/mirror-auth.ts), its applied seq and its lag:
 *
 *   lagSeq = head - acked seq
 *   lagMs  = now - commit time of the oldest generation it has not acked (0 when caught up)
 *
 * Each ack that advances a mirror also yields a publish-to-visible sample:
 * ack receive time minus the commit time of the acked seq.
 *
 * `list` and the samples show only mirrors still enrolled (`isEnrolled`), so a
 * revoked credential takes its mirror off the list, the status page and the
 * lag figures at once.
 */
export interface MirrorRegistry {
  /** Records an ack; returns the publish-to-visible latency when the ack advanced the mirror. */
  ack(request: AckRequest, receivedAtMs: number): { visibleMs: number | undefined };
  /** Notes a mirror seen on the events stream (listed even before its first ack). */
  seen(mirrorId: string, atMs: number): void;
  list(nowMs: number): MirrorsResponse;
  /** The latest publish-to-visible samples, newest last. */
  recentVisibleMs(): readonly VisibleSample[];
}

export interface VisibleSample {
  mirrorId: string;
  seq: number;
  latencyMs: number;
  atMs: number;
}

interface MirrorRecord {
  mirrorId: string;
  region: string;
  url: string;
  seq: number;
  lastSeenAt: number;
}

export const VISIBLE_SAMPLES_KEPT = 1000;
/** Bounds the map even if many mirror ids are enrolled and retired over a primary's life. */
export const MAX_KNOWN_MIRRORS = 1024;

export function createMirrorRegistry(options: {
  journal: Journal;
  isConnected: (mirrorId: string) => boolean;
  /** Whether a mirror id holds an unrevoked credential now; default: every id (unit tests of the registry alone). */
  isEnrolled?: (mirrorId: string) => boolean;
}): MirrorRegistry {
  const isEnrolled = options.isEnrolled ?? (() => true);
  const { journal } = options;
  const mirrors = new Map<string, MirrorRecord>();
  const samples: VisibleSample[] = [];

  function remember(record: MirrorRecord): void {
    mirrors.delete(record.mirrorId);
    mirrors.set(record.mirrorId, record);
    if (mirrors.size <= MAX_KNOWN_MIRRORS) return;
    // Map order is insertion order and every touch re-inserts: the first key is the least recently seen.
    const stalest = mirrors.keys().next().value;
    if (stalest !== undefined) mirrors.delete(stalest);
  }

  function lagMsOf(seq: number, nowMs: number): number {
    const head = journal.headSeq();
    if (seq >= head) return 0;
    // The oldest unacked generation; beyond the journal's memory, its oldest kept one stands in.
    const firstUnacked = Math.max(seq + 1, journal.oldestSeq() + 1);
    const time = journal.timeOf(firstUnacked) ?? journal.headTime();
    return Math.max(0, Math.round(nowMs - time));
  }

  return {
    ack(request, receivedAtMs) {
      const previous = mirrors.get(request.mirrorId);
      remember({ mirrorId: request.mirrorId, region: request.region, url: request.url, seq: request.seq, lastSeenAt: receivedAtMs });
      if (previous !== undefined && request.seq <= previous.seq) return { visibleMs: undefined };
      const committedAt = journal.timeOf(request.seq);
      if (committedAt === undefined || request.seq === 0) return { visibleMs: undefined };
      const latencyMs = Math.max(0, receivedAtMs - committedAt);
      samples.push({ mirrorId: request.mirrorId, seq: request.seq, latencyMs, atMs: receivedAtMs });
      if (samples.length > VISIBLE_SAMPLES_KEPT * 2) samples.splice(0, samples.length - VISIBLE_SAMPLES_KEPT);
      return { visibleMs: latencyMs };
    },
    seen(mirrorId, atMs) {
      const record = mirrors.get(mirrorId);
      remember(record === undefined ? { mirrorId, region: '', url: '', seq: 0, lastSeenAt: atMs } : { ...record, lastSeenAt: atMs });
    },
    list(nowMs) {
      const head = journal.headSeq();
      const list: MirrorStatus[] = [...mirrors.values()]
        .filter((record) => isEnrolled(record.mirrorId))
        .sort((a, b) => a.mirrorId.localeCompare(b.mirrorId))
        .map((record) => ({
          ...record,
          lagSeq: Math.max(0, head - record.seq),
          lagMs: lagMsOf(record.seq, nowMs),
          connected: options.isConnected(record.mirrorId),
        }));
      return { seq: head, time: journal.headTime(), mirrors: list };
    },
    recentVisibleMs: () => samples.slice(-VISIBLE_SAMPLES_KEPT).filter((sample) => isEnrolled(sample.mirrorId)),
  };
}
