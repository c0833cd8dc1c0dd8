import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPackFrames, type PackFrame } from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { buildApp, type PrimaryApp } from '../src/app.js';
import { openPrimaryCore, type PrimaryCore } from '../src/data-dir.js';
import type { PublishAuth } from '../src/publish/auth.js';
import type { RateLimitConfig } from '../src/routes/rate-limits.js';

export interface TestPrimary extends PrimaryApp {
  core: PrimaryCore;
  dataDir: string;
  close(): Promise<void>;
}

export const TEST_TOKEN = 'test-publish-token';

/** A real primary core on a temp data dir and its app (not listening unless the test calls listen). */
export async function startTestPrimary(
  options: {
    keepGenerations?: number;
    heartbeatMs?: number;
    now?: () => number;
    publishAuth?: PublishAuth;
    rateLimits?: RateLimitConfig;
  } = {},
): Promise<TestPrimary> {
  const dataDir = await mkdtemp(join(tmpdir(), 'metasync-primary-'));
  const log = createLogger({ name: 'test-primary', level: 'silent' });
  const core = await openPrimaryCore({
    dataDir,
    signingKeyFile: undefined,
    keepGenerations: options.keepGenerations ?? 1000,
    snapshotEveryGenerations: 1000,
    snapshotIntervalMs: 3_600_000,
    log,
  });
  const built = await buildApp({
    core,
    logger: log,
    publishTokens: [TEST_TOKEN],
    maxBodyBytes: 1024 * 1024,
    heartbeatMs: options.heartbeatMs ?? 15_000,
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.publishAuth === undefined ? {} : { publishAuth: options.publishAuth }),
    ...(options.rateLimits === undefined ? {} : { rateLimits: options.rateLimits }),
  });
  return {
    ...built,
    core,
    dataDir,
    async close() {
      await built.app.close();
      await core.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export const publish = (primary: TestPrimary, path: string, text: string) =>
  primary.core.publisher.submit([{ path, content: Buffer.from(text) }], 'api');

/** A pack response through the shared decoder; it refuses frames not asked for, so each hash gets a generous size. */
export async function framesOf(data: Buffer, shas: readonly (string | undefined)[]): Promise<PackFrame[]> {
  const frames: PackFrame[] = [];
  const chunks = (async function* () {
    yield data;
  })();
  for await (const frame of readPackFrames(chunks, new Map(shas.map((sha) => [sha ?? '', 1 << 20])))) frames.push(frame);
  return frames;
}
