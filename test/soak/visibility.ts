import { HEADERS } from '@metasync/shared';

/**
 * Publish-to-visible: from the moment a publish call returned seq S until
 * every mirror serves generation S or later. A mirror's generation is read
 * from the `x-metasync-seq` header of a cheap `HEAD /packages.json` (the seq
 * of the index the response came from), polled only while some publish is not
 * yet visible on that mirror, every `pollMs`.
 */
export interface VisibilityTracker {
  track(seq: number, returnedAtMs: number): void;
  /** Per publish: ms until visible on all mirrors (publishes not yet visible are left out). */
  allMirrorsMs(): number[];
  /** Per mirror: ms until visible on that mirror. */
  perMirrorMs(): number[][];
  /** Publishes not yet visible on every mirror. */
  pending(): number;
  /** Highest seq each mirror reported. */
  seenSeqs(): number[];
  stop(): Promise<void>;
}

interface Pending {
  seq: number;
  returnedAtMs: number;
  visibleAtMs: (number | undefined)[];
}

export function startVisibilityTracker(options: { mirrorUrls: readonly string[]; pollMs: number }): VisibilityTracker {
  const pending: Pending[] = [];
  const allMs: number[] = [];
  const perMirror: number[][] = options.mirrorUrls.map(() => []);
  const seen = options.mirrorUrls.map(() => 0);
  let stopped = false;

  async function readSeq(url: string): Promise<number | undefined> {
    try {
      const response = await fetch(`${url}/packages.json`, { method: 'HEAD', signal: AbortSignal.timeout(5_000) });
      const seq = Number(response.headers.get(HEADERS.seq));
      return Number.isInteger(seq) ? seq : undefined;
    } catch {
      // A failed probe is not a client failure: the client load counts those. Try again next poll.
      return undefined;
    }
  }

  function settle(mirror: number, seq: number, atMs: number): void {
    seen[mirror] = Math.max(seen[mirror]!, seq);
    for (let i = pending.length - 1; i >= 0; i--) {
      const entry = pending[i]!;
      if (entry.seq > seq || entry.visibleAtMs[mirror] !== undefined) continue;
      entry.visibleAtMs[mirror] = atMs;
      perMirror[mirror]!.push(atMs - entry.returnedAtMs);
      if (entry.visibleAtMs.every((v) => v !== undefined)) {
        allMs.push(Math.max(...(entry.visibleAtMs as number[])) - entry.returnedAtMs);
        pending.splice(i, 1);
      }
    }
  }

  const loops = options.mirrorUrls.map(async (url, mirror) => {
    while (!stopped) {
      const waiting = pending.some((entry) => entry.visibleAtMs[mirror] === undefined);
      if (waiting) {
        const seq = await readSeq(url);
        if (seq !== undefined) settle(mirror, seq, Date.now());
      }
      await new Promise((resolve) => setTimeout(resolve, waiting ? options.pollMs : Math.max(options.pollMs, 20)));
    }
  });

  return {
    track(seq, returnedAtMs) {
      const entry: Pending = { seq, returnedAtMs, visibleAtMs: options.mirrorUrls.map(() => undefined) };
      pending.push(entry);
      // A mirror already past seq (another publish's poll saw it) counts as visible now.
      seen.forEach((mirrorSeq, mirror) => {
        if (mirrorSeq >= seq) settle(mirror, mirrorSeq, Date.now());
      });
    },
    allMirrorsMs: () => [...allMs],
    perMirrorMs: () => perMirror.map((list) => [...list]),
    pending: () => pending.length,
    seenSeqs: () => [...seen],
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}
