import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isMetasyncError } from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { buildApp } from './app.js';
import { loadConfig } from './config.js';
import { openPrimaryCore } from './data-dir.js';
import { openPublishAuth } from './publish/auth.js';
import { createPrimaryS3 } from './s3/setup.js';
import { STAT_CACHE_FILE } from './watch/stat-cache.js';
import { startSourceWatcher } from './watch/watcher.js';
import { createSourceWatchStatus } from './watch/watch-status.js';
import { startUpstreamFollower } from './upstream/follower.js';
import { createProgressBar } from './upstream/progress-bar.js';
import { createUpstreamStatus } from './upstream/status.js';
import { runTokenCommand } from './publish/token-cli.js';
import { runMirrorCredentialCommand } from './mirrors/credential-cli.js';
import { openMirrorCredentials } from './mirrors/credential-store.js';

/**
 * The metasync-primary daemon: the only file that reads process.env, listens or exits.
 * SIGTERM/SIGINT: stop accepting, end event streams, finish in-flight requests
 * and queued commits, close the journal, exit 0.
 */
async function main(): Promise<void> {
  const subcommand =
    process.argv[2] === 'token' ? runTokenCommand : process.argv[2] === 'mirror-credential' ? runMirrorCredentialCommand : undefined;
  if (subcommand !== undefined) {
    const io = {
      stdout: (text: string) => process.stdout.write(text),
      stderr: (text: string) => process.stderr.write(text),
      nowMs: Date.now,
    };
    process.exitCode = await subcommand(process.argv.slice(3), process.env, io);
    return;
  }
  let loaded;
  try {
    loaded = loadConfig(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
  if (loaded.help) {
    process.stdout.write(loaded.helpText);
    process.exit(0);
  }
  const config = loaded.config;
  const log = createLogger({ name: 'metasync-primary', level: config.logLevel });
  // A tokens file that cannot be read or parsed at start is a config error (exit 2); later edits reload live.
  let publishAuth;
  try {
    publishAuth = await openPublishAuth({
      staticTokens: config.publishTokens,
      tokensFile: config.publishLimits.tokensFile,
      pollMs: config.publishLimits.tokensPollMs,
      log,
    });
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
  // Enrolled mirrors: <data>/mirror-credentials.json, followed like the tokens file (absent: none enrolled yet).
  let mirrorCredentials;
  try {
    await mkdir(config.dataDir, { recursive: true });
    mirrorCredentials = await openMirrorCredentials({ dataDir: config.dataDir, pollMs: config.publishLimits.tokensPollMs, log });
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  }
  // With --s3-bucket, a generation is appended (and so announced) only once its objects are in the bucket.
  const s3 = await createPrimaryS3({
    config: config.s3,
    log,
    snapshotEveryGenerations: config.snapshotEvery,
    snapshotIntervalMs: config.snapshotIntervalMs,
  });
  const core = await openPrimaryCore({
    dataDir: config.dataDir,
    signingKeyFile: config.signingKeyFile,
    keepGenerations: config.journalKeep,
    keepEntries: config.journalKeepEntries,
    snapshotEveryGenerations: config.snapshotEvery,
    snapshotIntervalMs: config.snapshotIntervalMs,
    maxGenerationEntries: config.maxGenerationEntries,
    objectGc: config.objectGc,
    distsUrl: config.distsUrl,
    log,
    ...(s3 === undefined ? {} : { beforeCommit: (generation) => s3.beforeCommit(generation) }),
    onFatal: (err) => {
      // After a failed fsync the journal's on-disk state is unknown: restart and replay it.
      log.fatal({ err }, 'journal failed, exiting for a restart');
      process.exit(70);
    },
  });
  s3?.start(core);
  // The app reports the watcher's state (metrics, status page) but is built before the watcher walks the tree.
  const sourceWatch = config.sourceDir === undefined ? undefined : createSourceWatchStatus();
  const upstreamStatus =
    config.upstream === undefined ? undefined : createUpstreamStatus({ upstream: config.upstream.url, pollMs: config.upstream.pollMs });
  const { app } = await buildApp({
    core,
    logger: log,
    publishTokens: config.publishTokens,
    publishAuth,
    mirrorCredentials,
    rateLimits: config.publishLimits.rateLimits,
    maxBodyBytes: config.maxBodyBytes,
    heartbeatMs: config.heartbeatMs,
    httpLimits: config.httpLimits,
    tls: config.tls,
    sourceWatch,
    upstream: upstreamStatus,
  });
  if (!publishAuth.enabled()) log.info('no publish token configured: publish API disabled');
  // A start-up reconcile that finished wrote the stat cache: without one, the tree may never have been published
  // whole (a first start, or one killed mid-ingest after some generations committed).
  const reconciledBefore = config.sourceDir !== undefined && existsSync(join(config.dataDir, STAT_CACHE_FILE));
  // The watcher reconciles the tree against the manifest (startup-reconcile.ts) from here on.
  const watcher =
    config.sourceDir === undefined
      ? undefined
      : await startSourceWatcher({
          sourceDir: config.sourceDir,
          publisher: core.publisher,
          log,
          rescanMs: config.sourceWatch.rescanMs,
          fallbackScanMs: config.sourceWatch.fallbackScanMs,
          maxWatches: config.sourceWatch.maxWatches,
          watcher: config.sourceWatch.watcher,
          prepareThreads: config.sourceWatch.prepareThreads,
          distsUrl: config.distsUrl,
          storeDir: core.publisher.store.dir,
          statCacheDir: config.dataDir,
          ...(sourceWatch === undefined ? {} : { status: sourceWatch }),
        });

  if (watcher !== undefined) {
    if (core.publisher.headSeq() === 0 || !reconciledBefore) {
      // Nothing published yet, or not the whole tree: listening waits for the ingest, so a mirror's first pull gets all of it.
      await watcher.reconciled;
    } else {
      // A restart serves its last generation at once (a million-path tree takes a minute to stat) and publishes
      // what changed while it was down once the reconcile commits; /status shows it running.
      watcher.reconciled.catch((err: unknown) => {
        log.fatal({ err, sourceDir: config.sourceDir }, 'source tree reconcile at start failed, exiting');
        process.exit(1);
      });
    }
  }
  await app.listen({ host: config.listen.host, port: config.listen.port });
  // Unlike --source, the upstream is followed after listening: a bootstrap of packagist.org takes
  // a while, and the primary serves (and reports itself stale on /health/upstream) meanwhile.
  const progressBar = config.upstream !== undefined && process.stderr.isTTY ? createProgressBar(process.stderr) : undefined;
  const follower =
    config.upstream === undefined || upstreamStatus === undefined
      ? undefined
      : startUpstreamFollower({
          config: config.upstream,
          dataDir: config.dataDir,
          publisher: core.publisher,
          status: upstreamStatus,
          log,
          ...(progressBar === undefined ? {} : { onProgress: progressBar.update }),
        });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.listen.port;
  const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  log.info({ url: `${config.tls === undefined ? 'http' : 'https'}://${host}:${port}`, seq: core.publisher.headSeq() }, 'listening');

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    void (async () => {
      try {
        await watcher?.close();
        await follower?.close();
        progressBar?.stop();
        await app.close();
        await core.close();
        await s3?.close();
        log.info({ seq: core.publisher.headSeq() }, 'stopped');
        process.exit(0);
      } catch (err) {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      }
    })();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  const code = isMetasyncError(err) ? err.code : undefined;
  process.stderr.write(`metasync-primary: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(code === 'METASYNC_ERR_CONFIG_INVALID' ? 2 : 1);
});
