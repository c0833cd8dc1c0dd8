import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { metasyncError } from '@metasync/shared';
import { MIRROR_NODE_FLAGS } from '@metasync/shared/node-version';
import type { Clock } from '@metasync/dns';
import type { LaunchedServer, LaunchProgress, LaunchSpec, Launcher } from './launcher.js';
import {
  isOurMirror,
  listMirrorIds,
  MIRROR_ID_PATTERN,
  mirrorDir,
  pidPath,
  readPid,
  readRecord,
  writeRecord,
  type ServerRecord,
} from './local-state.js';
import { mirrorMainFor } from './release-root.js';

/**
 * The `local` launcher: a mirror process on this host, listening on 127.0.0.1,
 * detached from the CLI so it outlives it, its state in one directory per
 * mirror (local-state.ts). The demo and the end-to-end tests run fleets with it.
 */
export interface LocalLauncherOptions {
  dir: string;
  /** Release version -> release dir or .tar.gz (release-root.ts). */
  releases: Readonly<Record<string, string>>;
  /**
   * Addresses DNS answers carry, one per live mirror (a DNS answer cannot carry
   * a port, and PowerDNS keys its health checks by address, so two local
   * mirrors must not share one). Empty: every mirror is 127.0.0.1.
   */
  addresses: readonly string[];
  /** Extra mirror flags (e.g. --max-lag-ms), the same for every launched mirror. */
  mirrorArgs: readonly string[];
  /** The mirrors' admin token, for `mirror retire`'s drain; passed in the environment, never on the command line. */
  adminToken?: string | undefined;
  clock: Clock;
  stopTimeoutMs?: number;
  readyTimeoutMs?: number;
}

const LOOPBACK = '127.0.0.1';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-5).join('\n').slice(-1500);
  } catch {
    return '(no log)';
  }
}

export function createLocalLauncher(options: LocalLauncherOptions): Launcher {
  const { dir, clock } = options;
  const stopTimeoutMs = options.stopTimeoutMs ?? 20_000;
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;

  const runningPid = async (record: ServerRecord): Promise<number | undefined> => {
    const pid = await readPid(dir, record.mirrorId);
    return pid !== undefined && alive(pid) && isOurMirror(pid, record) ? pid : undefined;
  };
  const toServer = (record: ServerRecord, pid: number | undefined): LaunchedServer => ({
    mirrorId: record.mirrorId,
    region: record.region,
    serverId: pid === undefined ? '' : String(pid),
    releaseVersion: record.releaseVersion,
    url: record.url,
    healthUrl: record.healthUrl,
    address: record.address,
    state: pid === undefined ? 'stopped' : 'running',
  });

  async function find(mirrorId: string): Promise<LaunchedServer | undefined> {
    const record = await readRecord(dir, mirrorId);
    return record === undefined ? undefined : toServer(record, await runningPid(record));
  }

  async function list(): Promise<LaunchedServer[]> {
    const servers: LaunchedServer[] = [];
    for (const id of await listMirrorIds(dir)) {
      const server = await find(id);
      if (server !== undefined) servers.push(server);
    }
    return servers;
  }

  /** The first pool address no other recorded mirror holds (a stopped one keeps its address until destroyed). */
  async function pickAddress(mirrorId: string): Promise<string> {
    if (options.addresses.length === 0) return LOOPBACK;
    const taken = new Set((await list()).filter((s) => s.mirrorId !== mirrorId).map((s) => s.address));
    const free = options.addresses.find((address) => !taken.has(address));
    if (free === undefined)
      throw metasyncError(
        'METASYNC_ERR_LAUNCH_FAILED',
        `every address of launch.local.addresses is taken (${options.addresses.join(', ')}): add one`,
        {
          mirrorId,
        },
      );
    return free;
  }

  async function waitListening(record: ServerRecord, pid: number, progress?: LaunchProgress): Promise<void> {
    const started = clock.now();
    for (let poll = 0; poll < 10_000; poll++) {
      if (!alive(pid) || !isOurMirror(pid, record))
        throw metasyncError(
          'METASYNC_ERR_LAUNCH_FAILED',
          `mirror ${record.mirrorId} exited before listening; ${record.logFile} ends:\n${logTail(record.logFile)}`,
          {
            mirrorId: record.mirrorId,
            logFile: record.logFile,
          },
        );
      try {
        const response = await request(record.healthUrl, { headersTimeout: 2_000, bodyTimeout: 2_000 });
        await response.body.dump();
        return;
      } catch {
        // Not listening yet: the index load and the listen come first.
      }
      if (clock.now() - started > readyTimeoutMs) break;
      if (poll % 20 === 19) progress?.(`  ${record.mirrorId}: pid ${pid} not listening yet on ${record.url}`);
      await clock.sleep(100);
    }
    throw metasyncError(
      'METASYNC_ERR_LAUNCH_FAILED',
      `mirror ${record.mirrorId} (pid ${pid}) did not listen on ${record.url} within ${readyTimeoutMs} ms; see ${record.logFile}`,
      {
        mirrorId: record.mirrorId,
      },
    );
  }

  async function launch(spec: LaunchSpec, progress?: LaunchProgress): Promise<LaunchedServer> {
    if (!MIRROR_ID_PATTERN.test(spec.mirrorId))
      throw metasyncError('METASYNC_ERR_CLI_USAGE', `mirror id ${JSON.stringify(spec.mirrorId)} must be 1-64 of [A-Za-z0-9._-]`, {
        mirrorId: spec.mirrorId,
      });
    const existing = await readRecord(dir, spec.mirrorId);
    if (existing !== undefined) {
      const pid = await runningPid(existing);
      if (pid !== undefined) {
        if (existing.releaseVersion !== spec.releaseVersion)
          throw metasyncError(
            'METASYNC_ERR_LAUNCH_FAILED',
            `mirror ${spec.mirrorId} already runs release ${existing.releaseVersion} (pid ${pid}), not ${spec.releaseVersion}: servers are immutable, launch a new id (mirrors roll)`,
            { mirrorId: spec.mirrorId },
          );
        progress?.(`${spec.mirrorId} already runs (pid ${pid}, ${existing.url})`);
        return toServer(existing, pid);
      }
    }
    if (spec.primaryKey === undefined)
      throw metasyncError('METASYNC_ERR_CLI_USAGE', `launching ${spec.mirrorId} needs the primary's key to pin`, {
        mirrorId: spec.mirrorId,
      });
    const main = await mirrorMainFor({ version: spec.releaseVersion, releases: options.releases, launchDir: dir });
    const home = mirrorDir(dir, spec.mirrorId);
    // A relaunch after a crash keeps the port, address and data dir: the mirror resumes from its data.
    const port = existing?.port ?? (await freePort());
    const url = `http://${LOOPBACK}:${port}`;
    const record: ServerRecord = {
      mirrorId: spec.mirrorId,
      region: spec.region,
      releaseVersion: spec.releaseVersion,
      port,
      address: existing?.address ?? (await pickAddress(spec.mirrorId)),
      url,
      healthUrl: `${url}/health/fresh`,
      dataDir: join(home, 'data'),
      logFile: join(home, 'mirror.log'),
      main,
    };
    await mkdir(home, { recursive: true });
    await writeRecord(dir, record);
    const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('METASYNC_')));
    if (spec.credential !== undefined) env.METASYNC_MIRROR_CREDENTIAL = spec.credential;
    if (options.adminToken !== undefined) env.METASYNC_ADMIN_TOKEN = options.adminToken;
    const args = [
      // The flags the systemd unit starts a mirror with.
      ...MIRROR_NODE_FLAGS,
      main,
      '--primary',
      spec.primaryUrl,
      '--data',
      record.dataDir,
      '--listen',
      `${LOOPBACK}:${port}`,
      '--region',
      spec.region,
      '--mirror-id',
      spec.mirrorId,
      '--primary-key',
      spec.primaryKey,
      ...options.mirrorArgs,
    ];
    const log = openSync(record.logFile, 'a', 0o600);
    let pid: number | undefined;
    try {
      const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log], env });
      child.unref();
      pid = child.pid;
    } finally {
      closeSync(log);
    }
    if (pid === undefined)
      throw metasyncError('METASYNC_ERR_LAUNCH_FAILED', `could not spawn ${process.execPath} for mirror ${spec.mirrorId}`, {
        mirrorId: spec.mirrorId,
      });
    await writeFile(pidPath(dir, spec.mirrorId), `${pid}\n`);
    progress?.(`launched ${spec.mirrorId}: pid ${pid}, release ${spec.releaseVersion}, ${url}, log ${record.logFile}`);
    await waitListening(record, pid, progress);
    return toServer(record, pid);
  }

  async function waitGone(pid: number, record: ServerRecord, timeoutMs: number): Promise<boolean> {
    const started = clock.now();
    for (let poll = 0; poll < 100_000; poll++) {
      if (!alive(pid) || !isOurMirror(pid, record)) return true;
      if (clock.now() - started > timeoutMs) return false;
      await clock.sleep(100);
    }
    return false;
  }

  async function destroy(mirrorId: string, progress?: LaunchProgress): Promise<void> {
    const record = await readRecord(dir, mirrorId);
    if (record === undefined) return;
    const pid = await readPid(dir, mirrorId);
    if (pid !== undefined && alive(pid) && !isOurMirror(pid, record))
      progress?.(`pid ${pid} of ${mirrorId}'s pid file is another process now: not signalling it`);
    else if (pid !== undefined && alive(pid)) {
      progress?.(`stopping ${mirrorId}: SIGTERM to pid ${pid}`);
      process.kill(pid, 'SIGTERM');
      if (!(await waitGone(pid, record, stopTimeoutMs))) {
        progress?.(`${mirrorId} (pid ${pid}) still runs ${stopTimeoutMs} ms after SIGTERM: SIGKILL`);
        process.kill(pid, 'SIGKILL');
        if (!(await waitGone(pid, record, 5_000)))
          throw metasyncError('METASYNC_ERR_LAUNCH_FAILED', `mirror ${mirrorId} (pid ${pid}) did not exit after SIGKILL`, { mirrorId });
      }
    }
    await rm(mirrorDir(dir, mirrorId), { recursive: true, force: true });
    progress?.(`${mirrorId} destroyed (its directory ${mirrorDir(dir, mirrorId)} removed)`);
  }

  return { kind: 'local', launch, find, list, destroy };
}
