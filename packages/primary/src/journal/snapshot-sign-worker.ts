/** The signing thread of snapshot-signer.ts: one snapshot, then it is terminated. */
import { parentPort } from 'node:worker_threads';
import { sortedView } from './manifest-view.js';
import type { SignAnswer, SignRequest } from './snapshot-signer.js';
import { writeSignedSnapshotFile } from './snapshot-file.js';

const port = parentPort!;
port.once('message', (request: SignRequest) => {
  const { seq, time, key, dir } = request;
  const answer: SignAnswer = writeSignedSnapshotFile({ dir, seq, time, sorted: sortedView(request.tables), key });
  port.postMessage(answer);
});
port.postMessage('ready'); // snapshot-signer.ts waits for it before it freezes the manifest
