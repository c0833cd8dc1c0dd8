import { createReadStream, type ReadStream } from 'node:fs';
import { link, rm } from 'node:fs/promises';
import { tempPathFor } from '@metasync/shared/fs';
import { SNAPSHOT_BODY_OFFSET, type SignedSnapshot } from '../journal/snapshot-file.js';

/**
 * `use` given the snapshot at a hard link of its own, removed once done: the served file may be removed
 * while objects upload (a minute after a newer head replaced it), and every attempt of the PUT opens the body
 * afresh from the link. A link left by a crash is a temp name, removed at start (removeSnapshotLeftovers).
 */
export async function withUploadLink<T>(snapshot: SignedSnapshot, use: (linked: SignedSnapshot) => Promise<T>): Promise<T> {
  const upload = tempPathFor(snapshot.path);
  await link(snapshot.path, upload);
  try {
    return await use({ ...snapshot, path: upload });
  } finally {
    await rm(upload, { force: true });
  }
}

/**
 * The body as a fresh stream per attempt, and every one of them destroyed at the end: a body the server
 * answered before reading it (a 412, a 503) is never read to its end, and an open one would pin the file.
 */
export function bodyStreams(snapshot: SignedSnapshot): { open(): ReadStream; destroyAll(): void } {
  const opened: ReadStream[] = [];
  return {
    open() {
      const stream = createReadStream(snapshot.path, { start: SNAPSHOT_BODY_OFFSET, end: SNAPSHOT_BODY_OFFSET + snapshot.length - 1 });
      opened.push(stream);
      return stream;
    },
    destroyAll() {
      for (const stream of opened) stream.destroy();
    },
  };
}
