import { isMetasyncError } from '@metasync/shared';
import { join } from 'node:path';
import { createLogger, pickHttpLimits, type Logger } from '@metasync/shared/daemon';
import { loadConfig } from './config.js';
import { startDraining } from './health.js';
import { openMirror, type Mirror } from './mirror.js';
import type { MirrorConfig } from './config.js';
import { startWorkerPool, type WorkerPool } from './workers/worker-pool.js';

/** The only file that reads process.env, listens, or exits. */
async function main(): Promise<void> {
  // libuv's own four threads, unless the operator sets UV_THREADPOOL_SIZE. This was 32 while every object was
  // fsynced before its commit; puts no longer fsync (one syncfs a batch), and 32 threads creating files on two
  // cores contend for the pool's queue lock and the file system (docs/operations.md, "Sizing": 50,000 file
  // creates kept the main thread busy 4.9-5.3 s with 32 threads, 1.3-1.6 s with 4).
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (isMetasyncError(err, 'METASYNC_ERR_CONFIG_INVALID') || isMetasyncError(err, 'METASYNC_ERR_CONFIG_KEY_UNPINNED')) {
      console.error(`${err.code}: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  if (loaded.help) {
    console.log(loaded.helpText);
    return;
  }
  const config = loaded.config;
  const logger = createLogger({ name: 'metasync-mirror', level: config.logLevel });
  const mirror = await openMirror(config, logger);
  let pool: WorkerPool | undefined;
  let url: string;
  if (mirror.workers > 1) {
    pool = await startWorkers(mirror, config, logger);
    url = pool.url;
  } else {
    const address = await mirror.app.listen({ host: config.listen.host, port: config.listen.port });
    url = address.replace('[::1]', '127.0.0.1');
  }
  mirror.startSync(url);
  logger.info({ url, mirrorId: mirror.mirrorId, seq: mirror.log.state.seq }, 'listening');

  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down');
    // A self-registered mirror leaves DNS before it stops listening, and deletes its health check last.
    const dns = mirror.dns;
    const force = setTimeout(
      () => {
        logger.error({ signal }, 'shutdown timed out');
        process.exit(1);
      },
      10_000 + (dns === undefined ? 0 : 2 * config.dnsTimeoutMs),
    );
    force.unref();
    const stop = async (): Promise<boolean> => {
      let dnsOk = true;
      if (dns !== undefined) {
        startDraining(mirror.drain, Date.now());
        dnsOk = await bounded(dns.withdraw(), config.dnsTimeoutMs, 'dns withdraw', logger);
      }
      // Workers first: their requests in flight may be forwarded ones, which need the main app.
      await pool?.close();
      await mirror.close();
      if (dns !== undefined) dnsOk = (await bounded(dns.retire(), config.dnsTimeoutMs, 'dns health check delete', logger)) && dnsOk;
      return dnsOk;
    };
    stop().then(
      (dnsOk) => {
        logger.info({ seq: mirror.log.state.seq, dnsOk }, 'stopped');
        // A DNS step that failed leaves work for `metasync mirror retire`: say so in the exit status.
        process.exit(dnsOk ? 0 : 1);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/** The serving threads (--workers > 1): they listen instead of the main app, which answers what they forward. */
async function startWorkers(mirror: Mirror, config: MirrorConfig, logger: Logger): Promise<WorkerPool> {
  await mirror.app.ready();
  return startWorkerPool({
    count: mirror.workers,
    app: mirror.app,
    sharing: mirror.log.state.sharing!,
    counters: mirror.workerCounters!,
    listen: config.listen,
    tls: config.tls,
    httpLimits: pickHttpLimits(config),
    hotCacheBytes: config.hotCacheBytes,
    objectsDir: join(config.data, 'objects'),
    logLevel: config.logLevel,
    logger,
    onFatal() {
      logger.fatal('no serving worker left');
      process.exit(1);
    },
  });
}

/** Waits for a shutdown step at most `timeoutMs`; a failure or timeout is logged and the shutdown goes on. */
async function bounded(step: Promise<void>, timeoutMs: number, what: string, logger: Logger): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    if ((await Promise.race([step, timeout])) !== 'timeout') return true;
    logger.error({ step: what, timeoutMs }, 'shutdown step timed out');
    return false;
  } catch (err) {
    logger.error({ err, step: what }, 'shutdown step failed');
    return false;
  } finally {
    clearTimeout(timer);
  }
}

main().catch((err: unknown) => {
  // A config problem found after loadConfig (a TLS certificate and key that do not make a pair) is still exit 2.
  if (isMetasyncError(err, 'METASYNC_ERR_CONFIG_INVALID')) {
    console.error(`${err.code}: ${err.message}`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
