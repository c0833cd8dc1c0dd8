import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isReservedPath } from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { loadConfig as loadMirrorConfig, openMirror } from '@metasync/mirror';
import { buildApp as buildPrimaryApp, openPrimaryCore } from '@metasync/primary';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Every route either daemon registers must be a reserved path (shared
 * isReservedPath), so repository content can never shadow one and a new
 * route cannot be added without reserving it. Both apps are built in-process
 * (no listen) with everything optional switched on (publish API, admin token).
 */
const log = createLogger({ name: 'test', level: 'silent' });
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-routes-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Full route paths from find-my-way's tree print (`commonPrefix: false`: one node per route prefix). */
function registeredPaths(app: { printRoutes(options: { commonPrefix: boolean }): string }): string[] {
  const paths: string[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^((?:│ {3}| {4})*)(?:├── |└── )(.*?)(?: \(([^)]*)\))?$/.exec(line);
    if (match === null) continue;
    const depth = match[1]!.length / 4;
    stack.length = depth;
    stack.push(match[2]!);
    if (match[3] !== undefined) paths.push(stack.join(''));
  }
  return paths;
}

/** `/sync/v1/objects/:sha256` -> `sync/v1/objects/x`; the landing page and the repository catch-all are not daemon routes. */
function routesToCheck(paths: readonly string[]): string[] {
  return paths.filter((path) => path !== '/' && path !== '/*').map((path) => path.slice(1).replace(/:[^/]+|\*/g, 'x'));
}

describe('daemon routes are reserved paths', () => {
  it('reserves every route the primary registers', async () => {
    const core = await openPrimaryCore({
      dataDir: join(dir, 'primary'),
      signingKeyFile: undefined,
      keepGenerations: 100,
      snapshotEveryGenerations: 100,
      snapshotIntervalMs: 3_600_000,
      log,
    });
    const { app } = await buildPrimaryApp({ core, logger: log, publishTokens: ['t'], maxBodyBytes: 1024, heartbeatMs: 15_000 });
    try {
      await app.ready();
      const routes = routesToCheck(registeredPaths(app));
      // The parse found the routes (a change to the print format must not make this pass vacuously).
      expect(routes).toEqual(expect.arrayContaining(['metrics', 'status', 'sync/v1/state', 'admin/keys/rotate', 'metadata/changes.json']));
      expect(routes.filter((route) => route.startsWith('api/'))).not.toEqual([]);
      expect(routes.filter((route) => !isReservedPath(route))).toEqual([]);
    } finally {
      await app.close();
      await core.close();
    }
  });

  it('reserves every route the mirror registers', async () => {
    const loaded = loadMirrorConfig(
      ['--primary', 'http://127.0.0.1:9', '--data', join(dir, 'mirror'), '--admin-token', 't', '--trust-first-key'],
      {},
    );
    if (loaded.help) throw new Error('unexpected help');
    const mirror = await openMirror(loaded.config, log, { defaultMetrics: false });
    try {
      await mirror.app.ready();
      const routes = routesToCheck(registeredPaths(mirror.app));
      expect(routes).toEqual(expect.arrayContaining(['healthz', 'health/fresh', 'metrics', 'admin/drain']));
      expect(routes.filter((route) => !isReservedPath(route))).toEqual([]);
    } finally {
      await mirror.close();
    }
  });
});
