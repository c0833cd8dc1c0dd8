/** The signing thread of snapshot-signer.ts: one snapshot, then it is terminated. */
import { parentPort, workerData } from 'node:worker_threads';
import { sortedView, TABLE_ARRAY_NAMES } from './manifest-view.js';
import type { PreparedMemory, SignAnswer, SignRequest } from './snapshot-signer.js';
import { writeSignedSnapshotFile } from './snapshot-file.js';

const PAGE_BYTES = 4096;
const port = parentPort!;
const bytes = workerData as Record<keyof PreparedMemory, number>;

// Every page written once here, so the main thread's copy into this memory takes no page fault.
const memory = {} as PreparedMemory;
for (const name of TABLE_ARRAY_NAMES) {
  const shared = new SharedArrayBuffer(bytes[name]);
  const view = new Uint8Array(shared);
  for (let at = 0; at < view.length; at += PAGE_BYTES) view[at] = 0;
  memory[name] = shared;
}
port.once('message', (request: SignRequest) => {
  const { seq, time, key, dir } = request;
  const answer: SignAnswer = writeSignedSnapshotFile({ dir, seq, time, sorted: sortedView(request.tables), key });
  port.postMessage(answer);
});
port.postMessage(memory);
