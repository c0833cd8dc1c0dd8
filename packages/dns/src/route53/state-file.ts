import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { hasErrno, metasyncError } from '@metasync/shared';
import { writeFileAtomic } from '@metasync/shared/fs';

/**
 * The registrar's local memory, written before each AWS call whose effect it
 * must be able to find again (the CallerReference before CreateHealthCheck),
 * so a rerun after a crash repeats the same call instead of making a second
 * health check nobody owns.
 */
const mirrorStateSchema = z.object({
  /** Bumped after each completed retire: Route53 never reuses a deleted check's CallerReference. */
  generation: z.number().int().nonnegative(),
  callerReference: z.string().optional(),
  healthCheckId: z.string().optional(),
  /** Checks replaced by a newer one; deleted once no record uses them. */
  obsoleteHealthCheckIds: z.array(z.string()).default([]),
  /** When the answer record was first seen gone during a retire (ms); the TTL wait counts from here. */
  recordGoneAtMs: z.number().int().optional(),
  /** The change that deleted the record, to wait for INSYNC after a crash. */
  deleteChangeId: z.string().optional(),
});
export type MirrorState = z.infer<typeof mirrorStateSchema>;

const stateFileSchema = z.object({
  version: z.literal(1),
  mirrors: z.record(z.string(), mirrorStateSchema),
});
type StateFile = z.infer<typeof stateFileSchema>;

export interface StateStore {
  get(key: string): Promise<MirrorState | undefined>;
  put(key: string, state: MirrorState): Promise<void>;
}

/** A JSON file, replaced atomically (temp + fsync + rename) on every write. */
export function createFileStateStore(path: string): StateStore {
  const load = async (): Promise<StateFile> => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (hasErrno(err, 'ENOENT')) return { version: 1, mirrors: {} };
      throw err;
    }
    const parsed = stateFileSchema.safeParse(JSON.parse(text));
    if (!parsed.success) {
      throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `DNS state file ${path} is not valid: ${parsed.error.message}`, { path });
    }
    return parsed.data;
  };
  return {
    async get(key) {
      return (await load()).mirrors[key];
    },
    async put(key, state) {
      const file = await load();
      file.mirrors[key] = state;
      await mkdir(dirname(path), { recursive: true });
      await writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
    },
  };
}

/** For unit tests and one-shot tools. */
export function createMemoryStateStore(): StateStore & { snapshot(): Record<string, MirrorState> } {
  const mirrors: Record<string, MirrorState> = {};
  return {
    get: (key) => Promise.resolve(mirrors[key] === undefined ? undefined : structuredClone(mirrors[key])),
    put: (key, state) => {
      mirrors[key] = structuredClone(state);
      return Promise.resolve();
    },
    snapshot: () => structuredClone(mirrors),
  };
}
