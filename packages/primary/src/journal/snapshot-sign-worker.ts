/** The signing thread of snapshot-signer.ts: one snapshot, then it is terminated. */
import { parentPort, workerData } from 'node:worker_threads';
import { sortedView, TABLE_ARRAY_NAMES } from './manifest-view.js';
import type { PreparedMemory, SignAnswer, SignRequest } from './snapshot-signer.js';
import { signSorted } from './snapshots.js';

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
  const snapshot = signSorted({ seq: request.seq, time: request.time, sorted: sortedView(request.tables), key: request.key });
  // Transferred, so the body must own its buffer (a small one may sit in Buffer's shared pool).
  const own = snapshot.body.byteOffset === 0 && snapshot.body.byteLength === snapshot.body.buffer.byteLength;
  const body = own ? snapshot.body : new Uint8Array(snapshot.body);
  const answer: SignAnswer = { body, signature: snapshot.signature, origins: snapshot.origins };
  port.postMessage(answer, [body.buffer as ArrayBuffer]);
});
port.postMessage(memory);
