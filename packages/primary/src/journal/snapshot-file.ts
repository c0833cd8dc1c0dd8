import { createHash } from 'node:crypto';
import { closeSync, fdatasyncSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { signSnapshotStatement, type SigningKey } from '@metasync/shared';
import { encodeRecord, fsyncDirSync, MAX_RECORD_BYTES, RECORD_HEADER_BYTES, SYNC_STEP_BYTES, tempPathFor } from '@metasync/shared/fs';
import type { SortedManifest } from './manifest.js';
import type { Origin } from './record.js';
import { streamSnapshotBody } from './snapshot-body.js';

/**
 * A snapshot file, `<dir>/snapshot-<seq, 16 digits>.bin`: two record-log frames,
 *
 *   [0] the Snapshot JSON body, exactly what `GET /sync/v1/snapshot` serves (bytes SNAPSHOT_BODY_OFFSET on)
 *   [1] {"statement": "<base64url>", "signature": "<keyId>.<sig>", "origins": "wwaw..."}
 *
 * `statement` and `signature` are the snapshot's headers (shared snapshot-statement.ts: the signature
 * covers a statement of the body's length and sha256, not the body); `origins` is internal, one letter
 * per entry. Files from before the statement hold only a signature over the body and are read, never served.
 *
 * The body is written a chunk at a time as it is built, hashed and CRC'd as it goes, and its frame
 * header filled in last; the file is synced and renamed into place, so a crash leaves the old file or
 * the new one. It is synchronous: it runs on the signing thread (snapshot-signer.ts), or in tests.
 */
export const SNAPSHOT_BODY_OFFSET = RECORD_HEADER_BYTES;

export interface SignedSnapshot {
  seq: number;
  time: number;
  /** The snapshot file; the body is its bytes [SNAPSHOT_BODY_OFFSET, SNAPSHOT_BODY_OFFSET + length). */
  path: string;
  length: number;
  /** sha256 hex of the body. */
  sha256: string;
  /** HEADERS.snapshotStatement value. */
  statement: string;
  /** HEADERS.signature value, over the statement. */
  signature: string;
}

/** Each entry's origin as one letter in the origins record, and back. */
const ORIGIN_LETTERS = { watch: 'w', api: 'a', upstream: 'u', pins: 'p' } as const satisfies Record<Origin, string>;

export function originOfLetter(letter: string | undefined): Origin {
  return letter === 'a' ? 'api' : letter === 'u' ? 'upstream' : letter === 'p' ? 'pins' : 'watch';
}

export function snapshotFileName(seq: number): string {
  return `snapshot-${String(seq).padStart(16, '0')}.bin`;
}

/** Writes the snapshot of `sorted` at `seq` into `dir` and signs it. */
export function writeSignedSnapshotFile(options: {
  dir: string;
  seq: number;
  time: number;
  sorted: SortedManifest;
  key: SigningKey;
}): SignedSnapshot {
  const { dir, seq, time, sorted, key } = options;
  const path = join(dir, snapshotFileName(seq));
  const temp = tempPathFor(path);
  const fd = openSync(temp, 'wx', 0o644);
  let signed: Pick<SignedSnapshot, 'length' | 'sha256' | 'statement' | 'signature'>;
  try {
    const hash = createHash('sha256');
    let crc = 0;
    let at = SNAPSHOT_BODY_OFFSET;
    let unsynced = 0;
    const length = streamSnapshotBody({ seq, time, ...sorted }, (chunk) => {
      if (at - SNAPSHOT_BODY_OFFSET + chunk.length > MAX_RECORD_BYTES)
        throw new RangeError(`snapshot body exceeds ${MAX_RECORD_BYTES} bytes, the largest record`);
      hash.update(chunk);
      crc = crc32(chunk, crc);
      at += writeWhole(fd, chunk, at);
      // Synced in steps, as writeFileAtomic does: one sync of 150 MB made the journal's fsyncs beside it wait.
      unsynced += chunk.length;
      if (unsynced >= SYNC_STEP_BYTES) {
        fdatasyncSync(fd);
        unsynced = 0;
      }
    });
    const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
    header.writeUInt32BE(length, 0);
    header.writeUInt32BE(crc, 4);
    writeWhole(fd, header, 0);
    const sha256 = hash.digest('hex');
    signed = { length, sha256, ...signSnapshotStatement(key, { seq, time, length, sha256 }) };
    const meta = { statement: signed.statement, signature: signed.signature, origins: originLetters(sorted) };
    writeWhole(fd, encodeRecord(Buffer.from(JSON.stringify(meta))), at);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(temp, path);
  fsyncDirSync(dir);
  return { seq, time, path, ...signed };
}

function originLetters(sorted: SortedManifest): string {
  // originAt, where there is one, builds no entry (and no sha256 string) for every path.
  const originAt = sorted.originAt ?? ((index: number) => sorted.entryAt(index).origin);
  const letters: string[] = [];
  for (let i = 0; i < sorted.size; i++) letters.push(ORIGIN_LETTERS[originAt(i)]);
  return letters.join('');
}

function writeWhole(fd: number, bytes: Uint8Array, position: number): number {
  for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
  return bytes.length;
}
