import type { AddressInfo } from 'node:net';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { createDaemonServer, createLogger, type HttpServerLimits, type TlsFiles } from '@metasync/shared/daemon';
import { objectPath } from '@metasync/store';
import { openIndexReader } from '../index/index-reader.js';
import type { SharedIndexHandle } from '../index/index-share.js';
import { createFastPath } from '../serve/fast-path.js';
import { createHotCache } from '../serve/hot-cache.js';
import { createRepositoryAnswers } from '../serve/repository-answer.js';
import { createVariantSizes } from '../serve/variant-sizes.js';
import { createForwarder, type ForwardedAnswer } from './forward.js';
import { workerSlot } from './worker-counters.js';

/**
 * One serving thread (worker-pool.ts starts them): its own HTTP server on the
 * mirror's address (reusePort: the kernel spreads connections over the
 * threads), the shared index read in place (index-reader.ts), the object
 * store read directly, its own hot cache. Hot hits are answered here by the
 * same code as without workers (fast-path.ts, repository-answer.ts);
 * everything else goes to the main thread (forward.ts). This file is the
 * thread's entry point: it listens and ends when told to close.
 */
export interface ServeWorkerData {
  worker: number;
  index: SharedIndexHandle;
  /** Where the main thread posts replaced index arrays (read with receiveMessageOnPort). */
  layoutPort: MessagePort;
  counters: Float64Array;
  listen: { host: string; port: number };
  tls: TlsFiles | undefined;
  httpLimits: HttpServerLimits;
  hotCacheBytes: number;
  objectsDir: string;
  logLevel: string;
}

export type WorkerMessage = { type: 'listening'; port: number } | { type: 'closed' };
export type MainMessage = ForwardedAnswer | { type: 'close' };

/** How often the answer counters are published and replaced index arrays pulled by an idle thread. */
const HOUSEKEEPING_MS = 250;

const data = workerData as ServeWorkerData;
const port = parentPort!;
const logger = createLogger({ name: 'metasync-mirror', level: data.logLevel }).child({ worker: data.worker });
const index = openIndexReader({ handle: data.index, port: data.layoutPort });
const store = { pathOf: (sha256: string, variant?: 'identity' | 'gzip' | 'br') => objectPath(data.objectsDir, sha256, variant) };
const answers = createRepositoryAnswers({
  index,
  store,
  hotCache: createHotCache(data.hotCacheBytes),
  variantSizes: createVariantSizes(store),
});
const fastPath = createFastPath(answers);
const slot = workerSlot(data.counters, data.worker);
const forwarder = createForwarder((request) => port.postMessage(request));
const server = createDaemonServer({
  limits: data.httpLimits,
  logger,
  tls: data.tls,
  handler: (req, res) => {
    const fast = fastPath.tryServe(req, res);
    slot.request(fast);
    if (!fast) forwarder.forward(req, res);
  },
});
const housekeeping = setInterval(() => {
  slot.answers(answers.counts());
  index.refresh();
}, HOUSEKEEPING_MS);

port.on('message', (message: MainMessage) => {
  if (message.type !== 'close') {
    forwarder.receive(message);
    return;
  }
  // Stop accepting; requests in flight (forwarded ones too: the main app is still up) finish first.
  server.close(() => {
    clearInterval(housekeeping);
    slot.answers(answers.counts());
    port.postMessage({ type: 'closed' } satisfies WorkerMessage);
    data.layoutPort.close();
    port.close();
  });
  (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
});

server.listen({ host: data.listen.host, port: data.listen.port, reusePort: true }, () => {
  port.postMessage({ type: 'listening', port: (server.address() as AddressInfo).port } satisfies WorkerMessage);
});
