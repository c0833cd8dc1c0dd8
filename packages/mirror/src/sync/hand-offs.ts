/**
 * Work handed off without waiting for each piece (a pack's objects going to the store while the next frames
 * are decoded), bounded: at most `limit` pending, the first failure kept, and `settled` waits for every one.
 */
export interface HandOffs {
  /** Starts tracking `work`; resolves once fewer than `limit` are pending. */
  add(work: Promise<void>): Promise<void>;
  settled(): Promise<void>;
  /** The first rejection of any work added, if any. */
  readonly failure: unknown;
}

export function createHandOffs(limit: number): HandOffs {
  const pending = new Set<Promise<void>>();
  const handOffs = {
    failure: undefined as unknown,
    async add(work: Promise<void>): Promise<void> {
      const tracked = work.then(
        () => void pending.delete(tracked),
        (err: unknown) => {
          pending.delete(tracked);
          handOffs.failure ??= err;
        },
      );
      pending.add(tracked);
      if (pending.size >= limit) await Promise.race(pending);
    },
    async settled(): Promise<void> {
      await Promise.all(pending);
    },
  };
  return handOffs;
}
