import { MessageChannel, Worker } from 'node:worker_threads';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '@metasync/shared/daemon';
import type { IndexSharing } from '../index/index-share.js';
import { answerForwarded, type ForwardControl, type ForwardedExchange, type ForwardedRequest } from './forward.js';
import type { MainMessage, ServeWorkerData, WorkerMessage } from './serve-worker.js';

/**
 * The serving threads of a mirror run with --workers N > 1 (main.ts starts
 * it instead of listening itself): N workers (serve-worker.ts) listen on the
 * same address with reusePort; the main thread keeps sync, the index writer,
 * GC, DNS and answers forwarded requests with its app. The index is shared,
 * never copied (index-share.ts).
 *
 *   start: worker 0 listens (port 0 resolves to a real port), then the others on that port
 *   crash: logged, restarted on the same port (at most MAX_RESTARTS a minute per
 *          worker); the others keep serving meanwhile; none left -> onFatal
 *   close: each worker stops accepting and finishes what it has, then exits
 *          (terminated after CLOSE_GRACE_MS)
 */
/** What each serving thread is started with, besides its number, index handle and layout port. */
export type WorkerSettings = Omit<ServeWorkerData, 'worker' | 'index' | 'layoutPort'>;

export interface WorkerPoolOptions extends WorkerSettings {
  count: number;
  app: FastifyInstance;
  sharing: IndexSharing;
  logger: Logger;
  /** Every worker is down and may not be restarted: the mirror no longer serves. */
  onFatal(): void;
  /** The thread's script (default serve-worker.js beside this file); tests give a thread that crashes on demand. */
  script?: URL;
}

export interface WorkerPool {
  /** The address the workers serve on, e.g. http://127.0.0.1:8081. */
  url: string;
  /** Workers listening now. */
  running(): number;
  close(): Promise<void>;
}

const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;
const CLOSE_GRACE_MS = 8_000;
const WORKER_SCRIPT = new URL('./serve-worker.js', import.meta.url);

export async function startWorkerPool(options: WorkerPoolOptions): Promise<WorkerPool> {
  const { logger } = options;
  const live = new Map<number, Worker>();
  const listeningNow = new Set<number>();
  const restarts = new Map<number, number[]>();
  let closing = false;
  let port = options.listen.port;

  /** Starts worker `i`; resolves with the port it listens on. */
  function spawn(i: number): Promise<number> {
    const channel = new MessageChannel();
    // Subscribed and handed the current layout in one synchronous step: no replaced array is missed.
    const unsubscribe = options.sharing.onLayout((layout) => channel.port1.postMessage(layout));
    const data: ServeWorkerData = {
      worker: i,
      index: options.sharing.handle(),
      layoutPort: channel.port2,
      counters: options.counters,
      listen: { host: options.listen.host, port },
      tls: options.tls,
      httpLimits: options.httpLimits,
      hotCacheBytes: options.hotCacheBytes,
      objectsDir: options.objectsDir,
      logLevel: options.logLevel,
    };
    const worker = new Worker(options.script ?? WORKER_SCRIPT, { workerData: data, transferList: [channel.port2] });
    live.set(i, worker);
    // This worker's forwarded requests still answering: abandoned if it dies.
    const exchanges = new Map<number, ForwardedExchange>();
    return new Promise<number>((resolve, reject) => {
      let listening = false;
      worker.on('message', (message: WorkerMessage | ForwardedRequest | ForwardControl) => {
        if (message.type === 'request') {
          const id = message.id;
          exchanges.set(
            id,
            answerForwarded({
              app: options.app,
              request: message,
              send: (answer) => worker.postMessage(answer satisfies MainMessage),
              logger,
              done: () => exchanges.delete(id),
            }),
          );
        } else if (message.type === 'ack') {
          exchanges.get(message.id)?.ack(message.bytes);
        } else if (message.type === 'abort') {
          exchanges.get(message.id)?.abort();
        } else if (message.type === 'listening') {
          listening = true;
          listeningNow.add(i);
          resolve(message.port);
        }
      });
      worker.on('error', (err) => logger.error({ err, worker: i }, 'serving worker failed'));
      worker.once('exit', (code) => {
        for (const exchange of [...exchanges.values()]) exchange.abort();
        unsubscribe();
        channel.port1.close();
        live.delete(i);
        listeningNow.delete(i);
        if (!listening) reject(new Error(`serving worker ${i} exited (code ${code}) before listening on ${options.listen.host}:${port}`));
        else if (!closing) restart(i, code);
      });
    });
  }

  function restart(i: number, code: number): void {
    const now = Date.now();
    const recent = (restarts.get(i) ?? []).filter((at) => now - at < RESTART_WINDOW_MS);
    if (recent.length >= MAX_RESTARTS) {
      logger.error({ worker: i, code, restarts: recent.length }, 'serving worker keeps failing: not restarted');
      if (live.size === 0) options.onFatal();
      return;
    }
    recent.push(now);
    restarts.set(i, recent);
    logger.error({ worker: i, code }, 'serving worker exited: restarting it');
    spawn(i).then(
      () => logger.info({ worker: i }, 'serving worker restarted'),
      (err: unknown) => {
        logger.error({ err, worker: i }, 'serving worker failed to restart');
        if (live.size === 0) options.onFatal();
      },
    );
  }

  port = await spawn(0);
  await Promise.all(Array.from({ length: options.count - 1 }, (_, k) => spawn(k + 1)));
  const host = options.listen.host.includes(':') ? `[${options.listen.host}]` : options.listen.host;
  logger.info({ workers: options.count, port }, 'serving workers listening');
  return {
    url: `${options.tls === undefined ? 'http' : 'https'}://${host}:${port}`,
    running: () => listeningNow.size,
    async close() {
      closing = true;
      await Promise.all(
        [...live.values()].map(async (worker) => {
          const exited = new Promise((resolve) => worker.once('exit', resolve));
          worker.postMessage({ type: 'close' } satisfies MainMessage);
          const timer = setTimeout(() => void worker.terminate(), CLOSE_GRACE_MS);
          await exited;
          clearTimeout(timer);
        }),
      );
    },
  };
}
