import { mkdir, open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_OBJECT_BYTES, changeEntrySchema, hasErrno, metasyncError, type ChangeEntry, type Snapshot } from '@metasync/shared';
import { createLoopSlices } from '@metasync/shared/daemon';
import {
  decodeLinedJson,
  decodeRecords,
  encodeRecord,
  encodeRecordHeaderOfParts,
  fsyncDir,
  parseLinedJsonHead,
  tempPathFor,
  writeFileAtomic,
} from '@metasync/shared/fs';
import { z } from 'zod';
import { encodeBase, encodeSnapshotBase, type BaseHeader } from './index-base.js';
import { applyEntries, arenaBytesFor, emptyIndex, pathBytesOf, type Dereference, type IndexEntry, type IndexState } from './index-state.js';

/**
 * The applied-index log: how the mirror remembers which generation it serves.
 *
 *   index/base   one framed record: {seq, time, paths, derefs}  (temp + rename)
 *   index/log    framed records, one per applied batch: {from, to, time, entries}
 *
 * Appending a batch record (then fdatasync) IS the commit point of a generation:
 * its objects are all on disk before it, and the in-memory switch follows it.
 * Restart = base + every record whose `from` chains on, a torn tail cut off.
 * The log grows by O(changed paths) per batch; `compact` folds it into a new
 * base (O(corpus), so it runs after an apply, never inside one, and only once
 * the log outweighs the base, which keeps its amortized cost O(changes)).
 *
 * A crash between writing a new base and emptying the log is harmless: records
 * with `to <= base.seq` are skipped on replay.
 *
 * Memory: the base is written one path tuple per line (lined-json.ts) and
 * replayed a line at a time into the index tables, so neither a write nor a
 * restart holds a per-path array (a base written whole, by an older version,
 * is still parsed whole).
 */
const baseHeadSchema = z.object({
  seq: z.number().int().nonnegative(),
  time: z.number().int().nonnegative(),
  derefs: z.array(z.object({ sha256: z.string(), atMs: z.number() })),
  /** Paths that follow (sizes the tables before the lines are read); absent in bases written whole. */
  count: z.number().int().nonnegative().optional(),
  /** Their bytes (sizes the path arena); absent in bases written before 2026-12-07. */
  pathBytes: z.number().int().nonnegative().optional(),
});
/** [path, sha256, size, mtime] tuples: a third the size of objects at 100k paths. */
const baseTupleSchema = z.tuple([z.string(), z.string(), z.number().int().nonnegative().max(MAX_OBJECT_BYTES), z.number()]);
const baseSchema = baseHeadSchema.extend({ paths: z.array(baseTupleSchema) });

const recordSchema = z.object({
  from: z.number().int().nonnegative(),
  to: z.number().int().nonnegative(),
  time: z.number().int().nonnegative(),
  appliedAt: z.number().int().nonnegative(),
  entries: z.array(changeEntrySchema),
});
export type IndexRecord = z.infer<typeof recordSchema>;

export interface IndexLog {
  readonly state: IndexState;
  /** Objects dereferenced by applied generations and not yet collected. */
  readonly derefs: Dereference[];
  /** Bytes in the log since the last base; drives compaction. */
  logBytes(): number;
  /** Durably appends the batch record (the commit point), then switches the in-memory index. */
  commitBatch(record: IndexRecord): Promise<Dereference[]>;
  /** Durably writes a snapshot as the new base (the commit point), then switches memory to it. */
  commitSnapshot(snapshot: Snapshot, appliedAt: number): Promise<Dereference[]>;
  compact(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenIndexLogResult {
  log: IndexLog;
  /** True when a torn tail (crash mid-append) was cut off. */
  repairedTail: boolean;
}

/** `sharedIndex`: the tables in shared memory, for serving worker threads (index-state.ts). */
export async function openIndexLog(dataDir: string, options: { sharedIndex?: boolean } = {}): Promise<OpenIndexLogResult> {
  const dir = join(dataDir, 'index');
  await mkdir(dir, { recursive: true });
  const basePath = join(dir, 'base');
  const logPath = join(dir, 'log');
  const state = emptyIndex(0, { shared: options.sharedIndex === true });
  const derefs: Dereference[] = [];

  const baseBytes = await readOptional(basePath);
  if (baseBytes !== undefined) {
    const decoded = decodeRecords(baseBytes);
    const payload = decoded.records[0];
    if (payload === undefined || decoded.tornTail) {
      throw metasyncError('METASYNC_ERR_JOURNAL_CORRUPT', `index base ${basePath} failed its checksum`, { path: basePath });
    }
    const base = state.write(() => {
      const decoded = decodeBase(payload, basePath, state);
      state.seq = decoded.seq;
      state.time = decoded.time;
      return decoded;
    });
    derefs.push(...base.derefs);
  }

  const logData = (await readOptional(logPath)) ?? Buffer.alloc(0);
  const decoded = decodeRecords(logData);
  for (const payload of decoded.records) {
    const record = recordSchema.parse(JSON.parse(payload.toString('utf8')));
    if (record.to <= state.seq) continue;
    if (record.from !== state.seq) {
      throw metasyncError(
        'METASYNC_ERR_JOURNAL_CORRUPT',
        `index log ${logPath} record (${record.from}, ${record.to}] does not follow seq ${state.seq}`,
        {
          path: logPath,
          from: record.from,
          to: record.to,
          seq: state.seq,
        },
      );
    }
    state.write(() => {
      derefs.push(...applyEntries(state, record.entries, record.appliedAt));
      state.seq = record.to;
      state.time = record.time;
    });
  }

  let handle: FileHandle = await open(logPath, 'a');
  if (decoded.tornTail) {
    await handle.truncate(decoded.validBytes);
    await handle.sync();
  }
  let bytes = decoded.validBytes;

  async function writeBase(base: BaseHeader, forEachPath: (visit: (path: string, entry: IndexEntry) => void) => void): Promise<void> {
    await writeBaseChunks(encodeBase(base, forEachPath));
  }

  async function writeBaseChunks(chunks: Buffer[]): Promise<void> {
    await writeFileAtomic(basePath, [encodeRecordHeaderOfParts(chunks), ...chunks]);
    // The base now covers every record: start an empty log (temp + rename, so a crash keeps one of the two).
    const emptyTemp = tempPathFor(logPath);
    await (await open(emptyTemp, 'wx')).close();
    await handle.close();
    await rename(emptyTemp, logPath);
    await fsyncDir(dir);
    handle = await open(logPath, 'a');
    bytes = 0;
  }

  const log: IndexLog = {
    state,
    derefs,
    logBytes: () => bytes,
    async commitBatch(record) {
      if (record.from !== state.seq || record.to <= record.from) {
        throw new Error(`batch (${record.from}, ${record.to}] does not follow applied seq ${state.seq}`);
      }
      const frame = encodeRecord(Buffer.from(JSON.stringify(record)));
      try {
        await handle.write(frame);
        await handle.datasync();
      } catch (err) {
        // A partial frame (ENOSPC) must not stay in front of the next append: cut back to the last commit.
        await handle.truncate(bytes);
        throw err;
      }
      bytes += frame.length;
      // One switch: readers in serving threads see the entries and the seq together (index-share.ts).
      const dropped = state.write(() => {
        const gone = applyEntries(state, record.entries, record.appliedAt);
        state.seq = record.to;
        state.time = record.time;
        return gone;
      });
      derefs.push(...dropped);
      return dropped;
    },
    async commitSnapshot(snapshot, appliedAt) {
      // The new tables are built, and the base encoded, in slices (a million paths are seconds of work and
      // the mirror serves meanwhile, from the tables it has); only the switch is one synchronous step.
      const slices = createLoopSlices();
      const prepared = await state.prepare(snapshot.entries, slices.turn);
      const dropped: Dereference[] = [];
      await state.forEachObjectInSlices((sha256) => {
        if (!prepared.hasObject(sha256)) dropped.push({ sha256, atMs: appliedAt });
      }, slices.turn);
      // Durable first, then the synchronous in-memory switch: memory never runs ahead of disk.
      await writeBaseChunks(
        await encodeSnapshotBase(
          {
            seq: snapshot.seq,
            time: snapshot.time,
            count: snapshot.entries.length,
            pathBytes: pathBytesOf(snapshot.entries),
            derefs: [...derefs, ...dropped],
          },
          snapshot.entries,
          slices.turn,
        ),
      );
      state.switchTo(prepared, snapshot);
      derefs.push(...dropped);
      return dropped;
    },
    async compact() {
      const base = { seq: state.seq, time: state.time, count: state.pathCount(), pathBytes: state.pathBytes(), derefs };
      await writeBase(base, (visit) => state.forEachPath(visit));
    },
    async close() {
      await handle.close();
    },
  };
  return { log, repairedTail: decoded.tornTail };
}

/**
 * Loads a base into `state` a line at a time; a base written whole on one line (before the lined layout)
 * is parsed whole. Each tuple is checked as baseSchema would.
 */
function decodeBase(payload: Buffer, basePath: string, state: IndexState): { seq: number; time: number; derefs: Dereference[] } {
  const corrupt = (why: string): Error =>
    metasyncError('METASYNC_ERR_JOURNAL_CORRUPT', `index base ${basePath} is damaged: ${why}`, { path: basePath });
  const setTuple = (tuple: unknown): void => {
    const [path, sha256, size, mtime] = baseTupleSchema.parse(tuple);
    state.set(path, { sha256, size, mtime });
  };
  const sizes = /^\{"seq":\d+,"time":\d+,"count":(\d+),(?:"pathBytes":(\d+),)?/.exec(payload.toString('latin1', 0, 120));
  // A path tuple line is over 64 bytes (its sha256 alone): a count beyond that is damage, not a size to
  // allocate; and the paths' bytes are within the payload's.
  const count = sizes === null ? 0 : Math.min(Number(sizes[1]), Math.floor(payload.length / 64));
  const pathBytes = sizes?.[2] === undefined ? undefined : Math.min(Number(sizes[2]), payload.length);
  state.clear(count, pathBytes === undefined ? undefined : arenaBytesFor(pathBytes));
  let lined;
  try {
    lined = decodeLinedJson(payload, setTuple);
  } catch (err) {
    throw corrupt((err as Error).message);
  }
  if (lined === undefined) {
    const whole = baseSchema.parse(JSON.parse(payload.toString('utf8')));
    state.clear(whole.paths.length);
    whole.paths.forEach(setTuple);
    state.trimArena();
    return whole;
  }
  const head = baseHeadSchema.safeParse(parseLinedJsonHead(lined));
  if (!head.success) throw corrupt(head.error.message);
  // A base written before paths were stored without their affixes counted their whole bytes: its arena is
  // a quarter larger than they need.
  state.trimArena();
  return head.data;
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** Removes the index entirely (tests and `--reset`); objects stay and are reused by hash. */
export async function removeIndex(dataDir: string): Promise<void> {
  await rm(join(dataDir, 'index'), { recursive: true, force: true });
}

export type { ChangeEntry };
