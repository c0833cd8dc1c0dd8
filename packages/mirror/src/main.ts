import { createLogger, isMetasyncError } from '@metasync/shared';
import { loadConfig } from './config.js';
import { openMirror } from './mirror.js';

/** The only file that reads process.env, listens, or exits. */
async function main(): Promise<void> {
  // Applies are fsync-bound (every object is fsynced before its commit): more libuv threads keep the
  // disk busy instead of queueing behind four. Read by libuv on first use of the pool, i.e. after this line.
  process.env.UV_THREADPOOL_SIZE ??= '32';
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (isMetasyncError(err, 'METASYNC_ERR_CONFIG_INVALID')) {
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
  const address = await mirror.app.listen({ host: config.listen.host, port: config.listen.port });
  const url = address.replace('[::1]', '127.0.0.1');
  mirror.startSync(url);
  logger.info({ url, mirrorId: mirror.mirrorId, seq: mirror.log.state.seq }, 'listening');

  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error({ signal }, 'shutdown timed out');
      process.exit(1);
    }, 10_000);
    force.unref();
    mirror.close().then(
      () => {
        logger.info({ seq: mirror.log.state.seq }, 'stopped');
        process.exit(0);
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

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
