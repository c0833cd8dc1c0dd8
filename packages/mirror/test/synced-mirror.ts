import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { createLogger } from '@metasync/shared/daemon';
import { loadConfig } from '../src/config.js';
import { openMirror, type Mirror } from '../src/mirror.js';
import { startFakePrimary, type FakePrimary } from './fake-primary.js';

/** Cleanups run in reverse by the test file's afterEach. */
export type Cleanups = (() => Promise<void>)[];

/** A real mirror (app + syncer, not listening) on a fresh data dir, following `primaryUrl`. */
export async function openTestMirror(primaryUrl: string, args: string[], cleanups: Cleanups): Promise<{ mirror: Mirror; dataDir: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'mirror-test-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const loaded = loadConfig(['--primary', primaryUrl, '--data', dataDir, '--poll-interval-ms', '100', '--trust-first-key', ...args], {});
  if (loaded.help) throw new Error('unexpected help');
  const mirror = await openMirror(loaded.config, createLogger({ name: 'test', level: 'silent' }), { defaultMetrics: false });
  cleanups.push(() => mirror.close());
  return { mirror, dataDir };
}

/** An in-process fake primary holding `files` as generation 1, and a mirror caught up with it. */
export async function syncedTestMirror(
  files: Record<string, string>,
  args: string[],
  cleanups: Cleanups,
): Promise<{ primary: FakePrimary; mirror: Mirror; dataDir: string }> {
  const primary = await startFakePrimary();
  cleanups.push(() => primary.close());
  primary.publish(files);
  const { mirror, dataDir } = await openTestMirror(primary.url, args, cleanups);
  // No push stream from the fake: the first poll pulls generation 1.
  mirror.startSync('http://127.0.0.1:1');
  for (let i = 0; i < 500 && mirror.log.state.seq < 1; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(mirror.log.state.seq).toBe(1);
  return { primary, mirror, dataDir };
}
