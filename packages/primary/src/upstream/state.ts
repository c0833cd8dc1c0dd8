/**
 * The follower's durable state, `<data>/upstream-state.json`, written with
 * temp + fsync + rename (writeFileAtomic), so a crash leaves the old state or the new:
 *
 *   {"version":1, "upstream":"<root url>", "phase":"bootstrap"|"resync"|"follow", "cursor":T, "cursorFrom":"start"|"changes", "resyncFrom"?:T0}
 *
 * `cursor` is the change feed's `since` (1/10000 s). It is saved only after the
 * generation holding everything up to it is committed: a crash replays changes
 * (harmless: same bytes are a no-op), never skips them.
 *
 * Bootstrap progress needs no file of its own: the cursor is saved (phase
 * `bootstrap`) before the first p2 fetch, and every fetched file is committed
 * in a generation; a restart re-lists and fetches only the names whose files
 * are not in the manifest yet. Whatever changed meanwhile comes through the
 * change feed from the saved cursor.
 */
import { join } from 'node:path';
import { readJsonFile, writeFileAtomic } from '@metasync/shared/fs';
import { z } from 'zod';

export const STATE_FILE = 'upstream-state.json';

const stateSchema = z.object({
  version: z.literal(1),
  upstream: z.string(),
  phase: z.enum(['bootstrap', 'resync', 'follow']),
  cursor: z.number().int().positive(),
  /**
   * Where the cursor came from: `start` (the feed's 400 answer, "now" on the upstream) or
   * `changes` (a 200's timestamp). A metasync primary's 200 answers its head's time, which can be
   * before the start "now"; only a 200 going back before an earlier 200 is a feed going backwards.
   */
  cursorFrom: z.enum(['start', 'changes']).default('changes'),
  /** During a resync: the cursor before it; held files are current up to it. */
  resyncFrom: z.number().int().positive().optional(),
});

export type FollowerState = z.infer<typeof stateSchema>;

export async function readFollowerState(dataDir: string): Promise<FollowerState | undefined> {
  return readJsonFile(join(dataDir, STATE_FILE), stateSchema, 'upstream follower state');
}

export async function writeFollowerState(dataDir: string, state: FollowerState): Promise<void> {
  await writeFileAtomic(join(dataDir, STATE_FILE), `${JSON.stringify(state)}\n`);
}
