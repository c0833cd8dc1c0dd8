import { access, rm, writeFile } from 'node:fs/promises';

/**
 * A file saying that background work is owed (the brotli backfill: brotli-backfill.ts), so a restart finds
 * it: present from the first piece of work taken until none is left. Changes are applied one at a time,
 * the last wanted state winning, so a quick on/off/on never leaves the file in the wrong state.
 *
 * Not fsynced: the store's next durability barrier (a syncfs for any bulk commit, which flushes the whole
 * file system) carries it, and a marker lost to a power cut costs only variants that serve gzip until a
 * later sweep makes them.
 */
export interface PendingMarker {
  set(owed: boolean): void;
  /** Resolves once the file matches the last set(). */
  settled(): Promise<void>;
}

/** `after`: no write starts before it settles (the owner's look at whether an earlier process left the file). */
export function createPendingMarker(
  path: string,
  onError: (err: unknown) => void,
  after: Promise<unknown> = Promise.resolve(),
): PendingMarker {
  let wanted: boolean | undefined;
  let onDisk: boolean | undefined;
  let applying: Promise<void> = after.then(
    () => undefined,
    () => undefined,
  );

  async function apply(): Promise<void> {
    while (wanted !== onDisk) {
      const target = wanted;
      try {
        if (target === true) await writeFile(path, '');
        else await rm(path, { force: true });
        onDisk = target;
      } catch (err) {
        onError(err);
        return;
      }
    }
  }

  return {
    set(owed) {
      wanted = owed;
      // Also when unchanged: a write that failed (a full disk) is tried again at the next set().
      if (onDisk !== owed) applying = applying.then(apply);
    },
    settled: () => applying,
  };
}

export async function markerPresent(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
