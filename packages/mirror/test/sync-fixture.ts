import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@metasync/shared/daemon';
import { loadConfig, type MirrorConfig } from '../src/config.js';
import { openMirror, type Mirror } from '../src/mirror.js';
import { startFakePrimary, type FakePrimary } from './fake-primary.js';

/**
 * A fake primary and a mirror on a fresh data dir (polling every 100 ms, trusting the first key), for the sync
 * tests; what it starts is pushed onto `cleanups` for the caller's afterEach.
 */
export async function startSyncFixture(
  cleanups: (() => Promise<void>)[],
  extra: string[] = [],
  options: { useEvents?: boolean } = {},
): Promise<{ primary: FakePrimary; mirror: Mirror; config: MirrorConfig; dataDir: string }> {
  const primary = await startFakePrimary();
  cleanups.push(() => primary.close());
  const dataDir = await mkdtemp(join(tmpdir(), 'mirror-sync-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const loaded = loadConfig(
    ['--primary', primary.url, '--data', dataDir, '--poll-interval-ms', '100', '--proxy-timeout-ms', '500', '--trust-first-key', ...extra],
    {},
  );
  if (loaded.help) throw new Error('unexpected help');
  const mirror = await openMirror(loaded.config, createLogger({ name: 'test', level: 'silent' }), { defaultMetrics: false, ...options });
  cleanups.push(() => mirror.close());
  return { primary, mirror, config: loaded.config, dataDir };
}
