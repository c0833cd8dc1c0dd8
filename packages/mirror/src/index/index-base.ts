import type { PathEntry } from '@metasync/shared';
import { linedJsonHead, LINED_JSON_SEPARATOR, LINED_JSON_TAIL } from '@metasync/shared/fs';
import type { Dereference, IndexEntry } from './index-state.js';

/**
 * The index base's bytes (index-log.ts): a head line with the generation and the objects awaiting
 * collection, then one [path, sha256, size, mtime] tuple per line (lined-json.ts), in chunks.
 */
export interface BaseHeader {
  seq: number;
  time: number;
  /** Paths forEachPath visits. */
  count: number;
  /** Their bytes: a restart sizes the path arena by them. */
  pathBytes: number;
  derefs: Dereference[];
}

/** Chunks of base JSON text are turned into bytes at about this size. */
const BASE_CHUNK_CHARS = 1 << 20;

/**
 * The base record's JSON, one path tuple per line (lined-json.ts), built from the paths one at a time
 * and kept as chunks (written as they are, never concatenated): no per-path array, no copy of the whole.
 */
export function encodeBase(base: BaseHeader, forEachPath: (visit: (path: string, entry: IndexEntry) => void) => void): Buffer[] {
  const writer = baseWriter(base);
  forEachPath(writer.add);
  return writer.end();
}

/** encodeBase of a snapshot's entries, awaiting `turn()` every 1,024 lines. */
export async function encodeSnapshotBase(
  base: BaseHeader,
  entries: readonly PathEntry[],
  turn: () => Promise<void> | undefined,
): Promise<Buffer[]> {
  const writer = baseWriter(base);
  for (const [index, entry] of entries.entries()) {
    writer.add(entry.path, entry);
    if ((index & 1023) === 1023) await turn();
  }
  return writer.end();
}

/** The base's lines, gathered into chunks of about BASE_CHUNK_CHARS. */
function baseWriter(base: BaseHeader): { add(path: string, entry: IndexEntry): void; end(): Buffer[] } {
  const chunks: Buffer[] = [];
  const fields = `"seq":${base.seq},"time":${base.time},"count":${base.count},"pathBytes":${base.pathBytes},"derefs":${JSON.stringify(base.derefs)}`;
  let text = linedJsonHead(fields, 'paths');
  let first = true;
  return {
    add(path, entry) {
      text += `${first ? '' : LINED_JSON_SEPARATOR}[${JSON.stringify(path)},"${entry.sha256}",${entry.size},${entry.mtime}]`;
      first = false;
      if (text.length >= BASE_CHUNK_CHARS) {
        chunks.push(Buffer.from(text));
        text = '';
      }
    },
    end() {
      chunks.push(Buffer.from(`${text}${LINED_JSON_TAIL}`));
      return chunks;
    },
  };
}
