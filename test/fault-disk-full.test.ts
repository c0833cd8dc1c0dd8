import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { hasErrno } from '@metasync/shared';
import {
  getChecked,
  getText,
  makeTempDir,
  publishMany,
  publishPackage,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { appliedSeq, compareWithPrimary, headSeq, metricValue } from './helpers/read-load.js';
import { waitFor } from './helpers/wait-for.js';

const execFileAsync = promisify(execFile);

/**
 * A mirror whose data dir is a small tmpfs: a filler file leaves ROOM_BYTES
 * free, then packages with incompressible descriptions are published one at a
 * time until the mirror's apply hits ENOSPC. While the disk is full the
 * current generation keeps serving, byte-verified, newer packages come through
 * the proxy fallback, the error is logged, counted in /metrics, and named by
 * /health/fresh once the lag passes --max-lag-ms. Deleting the filler lets the
 * same process (no restart) converge; a restart afterwards finds an intact
 * index log (no torn frame left by the failed append).
 */
const MAX_LAG_MS = 2_000;
const TMPFS_BYTES = 8 * 1024 * 1024;
const ROOM_BYTES = 256 * 1024;
const NO_SPACE = 'METASYNC_ERR_STORE_NO_SPACE';

let primary: RunningPrimary | undefined;
let mirror: RunningMirror | undefined;
let mounted: string | undefined;

afterAll(async () => {
  await mirror?.stop();
  await primary?.stop();
  // Lazy unmount: succeeds even if something still holds a file open there.
  if (mounted !== undefined) await execFileAsync('umount', ['-l', mounted]);
  await removeTempDirs();
});

/** Mounts a tmpfs; undefined when the kernel refuses (EPERM: not root, or no CAP_SYS_ADMIN in this container). */
async function mountTmpfs(dir: string, bytes: number): Promise<string | undefined> {
  try {
    await execFileAsync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir]);
    return undefined;
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? '');
    if (/permission denied|must be superuser|only root|EPERM|not permitted/i.test(stderr)) return stderr.trim();
    throw err;
  }
}

/** Writes zeros to `path` until ENOSPC, then cuts it back so `roomBytes` stay free. */
async function fillDisk(path: string, roomBytes: number): Promise<number> {
  const handle = await open(path, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (let i = 0; i < 1_000_000; i++) {
      try {
        await handle.write(chunk);
      } catch (err) {
        if (hasErrno(err, 'ENOSPC')) break;
        throw err;
      }
    }
  } finally {
    await handle.close();
  }
  const size = (await stat(path)).size;
  await truncate(path, Math.max(0, size - roomBytes));
  return size - roomBytes;
}

describe('mirror with a full disk', () => {
  it('keeps serving its current generation verified, reports the error, and converges without a restart once space is freed', async (context) => {
    const dataDir = await makeTempDir('e2e-diskfull-');
    const refused = await mountTmpfs(dataDir, TMPFS_BYTES);
    if (refused !== undefined) {
      console.log(`disk full: skipped, mount -t tmpfs refused: ${refused}`);
      context.skip();
    }
    mounted = dataDir;
    primary = await startPrimary();
    const p = primary;
    await publishMany(p.url, { vendor: 'acme', count: 20, version: '1.0.0', padBytes: 2_000 });
    mirror = await startMirror({
      primaryUrl: p.url,
      keyArg: p.keyArg,
      dataDir,
      args: ['--poll-interval-ms', '200', '--max-lag-ms', String(MAX_LAG_MS), '--proxy-timeout-ms', '1000'],
    });
    const m = mirror;
    const pid = m.child.pid;
    const head0 = await headSeq(p.url);
    await waitFor(async () => (await appliedSeq(m.url)) === head0, { what: `mirror at seq ${head0}`, timeoutMs: 15_000 });

    const filler = join(dataDir, 'filler');
    const fillerBytes = await fillDisk(filler, ROOM_BYTES);
    // Incompressible descriptions: each package costs its raw, gzip and brotli bytes on the mirror.
    const big: string[] = [];
    let fullAt: number | undefined;
    for (let i = 0; i < 60 && fullAt === undefined; i++) {
      const name = `acme/big${i}`;
      const seq = await publishPackage(p.url, name, [{ version: '1.0.0', description: randomBytes(24_000).toString('base64') }]);
      big.push(name);
      await waitFor(
        async () =>
          (await appliedSeq(m.url)) >= seq || (await metricValue(m.url, 'metasync_mirror_sync_errors_total', `code="${NO_SPACE}"`)) > 0,
        {
          what: `seq ${seq} applied or a no-space error`,
          timeoutMs: 5_000,
          intervalMs: 20,
        },
      );
      if ((await appliedSeq(m.url)) < seq) fullAt = seq;
    }
    expect(fullAt).toBeDefined();
    const stuckSeq = await appliedSeq(m.url);
    const appliedBeforeFull = big.length - 1;
    // More publishes while full: every retry fails the same way, nothing half-applied shows.
    for (let i = 0; i < 3; i++)
      await publishPackage(p.url, `acme/late${i}`, [{ version: '1.0.0', description: randomBytes(24_000).toString('base64') }]);

    const stale = await waitFor(
      async () => {
        const response = await getText(`${m.url}/health/fresh`);
        return response.status === 503 ? response.body : undefined;
      },
      { what: 'health/fresh stale while the disk is full', timeoutMs: MAX_LAG_MS + 4_000, intervalMs: 50 },
    );
    expect(stale).toContain(NO_SPACE);
    expect(await appliedSeq(m.url)).toBe(stuckSeq);
    // The current generation, byte for byte, from the store.
    const { paths: servedPaths, problems } = await compareWithPrimary({ mirrorUrl: m.url, primaryUrl: p.url, seq: stuckSeq });
    expect(problems).toEqual([]);
    // What the full disk keeps out comes through the proxy fallback, verified.
    const proxied = await getChecked(`${m.url}/p2/${big[big.length - 1]}.json`);
    expect({ status: proxied.status, hashOk: proxied.hashOk, proxied: proxied.headers.get('x-metasync-proxied') }).toEqual({
      status: 200,
      hashOk: true,
      proxied: '1',
    });
    const errorsWhileFull = await metricValue(m.url, 'metasync_mirror_sync_errors_total', `code="${NO_SPACE}"`);
    const logged = m.logs.filter((entry) => entry.msg === 'sync failed' && (entry.err as { code?: string } | undefined)?.code === NO_SPACE);
    expect(logged.length).toBeGreaterThan(0);
    // Where the writes failed: an object file (fetch phase) or the index log (the commit append).
    const failedAt = [
      ...new Set(
        logged.map((entry) =>
          String((entry.err as { message?: string }).message ?? '')
            .replace(dataDir, '<data>')
            .replace(/objects\/[0-9a-f]{2}\/[0-9a-f]+/, 'objects/<sha>'),
        ),
      ),
    ];

    await rm(filler);
    const freedAt = Date.now();
    const head = await headSeq(p.url);
    await waitFor(async () => (await appliedSeq(m.url)) === head, {
      what: `convergence to seq ${head} after freeing space`,
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    const convergeMs = Date.now() - freedAt;
    await waitFor(async () => (await getText(`${m.url}/health/fresh`)).status === 200, {
      what: 'fresh after freeing space',
      timeoutMs: 5_000,
    });
    expect(m.child.pid).toBe(pid);
    expect(m.child.exitCode).toBeNull();
    const final = await compareWithPrimary({ mirrorUrl: m.url, primaryUrl: p.url, seq: head });
    expect(final.problems).toEqual([]);

    // A restart replays the index log to the same head: the failed appends left no torn frame behind.
    await m.stop();
    mirror = await startMirror({ primaryUrl: p.url, keyArg: p.keyArg, dataDir, args: ['--poll-interval-ms', '200'] });
    expect(await appliedSeq(mirror.url)).toBe(head);
    expect(mirror.logs.some((entry) => entry.msg === 'cut a torn tail off the index log')).toBe(false);
    console.log(
      `disk full: tmpfs ${TMPFS_BYTES} B, filler ${fillerBytes} B; ${appliedBeforeFull} big publishes applied before ENOSPC at seq ${fullAt}; stuck at seq ${stuckSeq} serving ${servedPaths} verified paths; ` +
        `${errorsWhileFull} failed sync runs counted with ${NO_SPACE}, ${logged.length} logged (${failedAt.join(' | ')}); health: "${stale.trim().slice(0, 120)}"; converged to seq ${head} ${convergeMs} ms after freeing space, same pid; ${final.paths} paths verified`,
    );
    expect(appliedBeforeFull).toBeGreaterThan(0);
  }, 40_000);
});
