/** The watcher tests' setup: a fresh source tree and primary core per test, both stopped after it. */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type Logger } from '@metasync/shared/daemon';
import { afterEach, beforeEach } from 'vitest';
import { openPrimaryCore, type PrimaryCore } from '../data-dir.js';
import type { CommitInfo } from '../publish/publisher.js';
import { startSourceWatcher, type SourceWatcherOptions, type SourceWatcher } from './watcher.js';

export interface WatcherFixture {
  base: string;
  /** The watched tree; `include/acme` exists in it. */
  source: string;
  core: PrimaryCore | undefined;
  watcher: SourceWatcher | undefined;
  logs: Array<Record<string, unknown>>;
  commits: CommitInfo[];
  log: Logger;
  open(extra?: { distsUrl?: string }): Promise<PrimaryCore>;
  /** Starts the watcher on the open core and waits for its start-up reconcile. */
  startWatching(extra?: Partial<SourceWatcherOptions>): Promise<SourceWatcher>;
  entryOf(path: string): ReturnType<PrimaryCore['publisher']['getEntry']>;
  /** Closes the watcher and the core (a restart follows with open and startWatching). */
  stop(): Promise<void>;
}

export function useWatcherFixture(): WatcherFixture {
  const t: WatcherFixture = {
    base: '',
    source: '',
    core: undefined,
    watcher: undefined,
    logs: [],
    commits: [],
    log: createLogger({ name: 'test', level: 'silent' }),
    async open(extra = {}) {
      const opened = await openPrimaryCore({
        ...extra,
        dataDir: join(t.base, 'data'),
        signingKeyFile: undefined,
        keepGenerations: 100_000,
        snapshotEveryGenerations: 1_000_000,
        snapshotIntervalMs: 3_600_000,
        log: t.log,
      });
      opened.publisher.onCommit((info) => t.commits.push(info));
      t.core = opened;
      return opened;
    },
    async startWatching(extra = {}) {
      const watcher = await startSourceWatcher({ sourceDir: t.source, publisher: t.core!.publisher, log: t.log, ...extra });
      t.watcher = watcher;
      await watcher.reconciled;
      return watcher;
    },
    entryOf: (path) => t.core!.publisher.getEntry(path),
    async stop() {
      await t.watcher?.close();
      t.watcher = undefined;
      await t.core?.close();
      t.core = undefined;
    },
  };

  beforeEach(async () => {
    t.base = await mkdtemp(join(tmpdir(), 'metasync-watch-'));
    t.source = join(t.base, 'source');
    await mkdir(join(t.source, 'include', 'acme'), { recursive: true });
    t.logs = [];
    t.commits = [];
    t.log = createLogger(
      { name: 'test', level: 'info' },
      { write: (line: string) => void t.logs.push(JSON.parse(line) as Record<string, unknown>) },
    );
  });

  afterEach(async () => {
    await t.stop();
    await rm(t.base, { recursive: true, force: true });
  });

  return t;
}
