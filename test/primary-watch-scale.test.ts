import { mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempDir, removeTempDirs, startPrimary, type RunningPrimary } from './helpers/mirror-cluster.js';
import { childrenNamed } from './helpers/proc-stats.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * Issue 13 part 5: the built primary watching --source costs one inotify watch
 * per directory, not per file, held by an inotifywait child (or by the primary
 * itself with a --source-max-watches cap), and a watch limit is a warning plus
 * fallback scanning, never an exit. Watches are counted from the kernel's own view:
 * the `inotify wd:` lines of the process's inotify fds in /proc/<pid>/fdinfo.
 */
let primary: RunningPrimary | undefined;

afterEach(async () => {
  await primary?.stop();
  primary = undefined;
  await removeTempDirs();
});

async function inotifyWatches(pid: number): Promise<number> {
  let watches = 0;
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    if (target !== 'anon_inode:inotify') continue;
    const info = await readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8').catch(() => '');
    watches += info.split('\n').filter((line) => line.startsWith('inotify wd:')).length;
  }
  return watches;
}

/** `vendors` directories under p2/ with `perVendor` p2 files each; returns the source dir. */
async function writeTree(vendors: number, perVendor: number): Promise<string> {
  const source = await makeTempDir('e2e-watch-scale-');
  for (let v = 0; v < vendors; v++) {
    await mkdir(join(source, 'p2', `v${v}`), { recursive: true });
    await Promise.all(Array.from({ length: perVendor }, (_, p) => writeFile(join(source, 'p2', `v${v}`, `p${p}.json`), p2(`v${v}/p${p}`))));
  }
  await writeFile(join(source, 'packages.json'), '{"packages":[],"metadata-url":"/p2/%package%.json"}');
  return source;
}

const p2 = (name: string, version = '1.0.0'): string =>
  JSON.stringify({ packages: { [name]: [{ name, version }] }, minified: 'composer/2.0' });

async function metricsText(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

describe('the primary watches its source tree with one watch per directory', () => {
  it('holds at most one inotify watch per directory for 3,000 files in 50 vendor directories, and still publishes a new file', async () => {
    const source = await writeTree(50, 60);
    const directories = 52; // the root, p2/, 50 vendors
    // Listening waits for the start-up ingest of all 3,000 files: slow on 2 shared cores (issue 13 part 4).
    primary = await startPrimary({ args: ['--source', source], readyTimeoutMs: 90_000 });
    // The tree's watches are held by one inotifywait child (bulk-dir-watches.ts), not by the primary.
    const watchers = await childrenNamed(primary.child.pid!, 'inotifywait');
    expect(watchers).toHaveLength(1);
    const childWatches = await inotifyWatches(watchers[0]!);
    expect(childWatches).toBeGreaterThanOrEqual(directories);
    // The small constant: the primary also follows files in its data dir (mirror credentials).
    const ownWatches = await inotifyWatches(primary.child.pid!);
    expect(ownWatches).toBeLessThanOrEqual(3);
    expect(childWatches + ownWatches).toBeLessThanOrEqual(directories + 3);
    const metrics = await metricsText(primary.url);
    expect(metrics).toContain(`metasync_primary_watch_directories ${directories}`);
    expect(metrics).toContain('metasync_primary_watch_degraded{reason="none"} 0');

    await writeFile(join(source, 'p2/v7/fresh.json'), p2('v7/fresh'));
    await waitFor(async () => (await fetch(`${primary!.url}/p2/v7/fresh.json`)).status === 200, {
      what: 'a file written after start published',
      timeoutMs: 10_000,
      intervalMs: 50,
    });
  }, 120_000);

  it('leaves no inotifywait behind when the primary is killed with SIGKILL', async () => {
    const source = await writeTree(3, 2);
    primary = await startPrimary({ args: ['--source', source], readyTimeoutMs: 60_000 });
    const watchers = await childrenNamed(primary.child.pid!, 'inotifywait');
    expect(watchers).toHaveLength(1);
    primary.child.kill('SIGKILL');
    // Its parent-death signal (setpriv --pdeathsig) ends it; otherwise it would hold the watches until the next event.
    const commandOf = async (pid: number): Promise<string> => (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
    await waitFor(async () => (await commandOf(watchers[0]!)) !== 'inotifywait', {
      what: 'the inotifywait child gone after its primary was killed',
      timeoutMs: 5_000,
      intervalMs: 50,
    });
  }, 120_000);

  it('keeps running past a watch limit (simulated with --source-max-watches), warns, and publishes through the fallback scan', async () => {
    const source = await writeTree(10, 5);
    primary = await startPrimary({
      args: ['--source', source, '--source-max-watches', '3', '--source-fallback-scan-ms', '500'],
      readyTimeoutMs: 60_000,
    });
    const warning = primary.logs.find((l) => l.msg === 'source watch limit reached');
    expect(warning).toMatchObject({ level: 40, reason: 'source-max-watches', watches: 3, fallbackScanMs: 500 });
    expect((warning?.err as { code?: string } | undefined)?.code).toBe('METASYNC_ERR_SOURCE_WATCH_LIMIT');
    expect(await inotifyWatches(primary.child.pid!)).toBeLessThanOrEqual(3 + 3);
    expect(await metricsText(primary.url)).toContain('metasync_primary_watch_degraded{reason="source-max-watches"} 1');
    const status = (await (await fetch(`${primary.url}/status/data.json`)).json()) as { source: { degraded: { reason: string } } };
    expect(status.source.degraded.reason).toBe('source-max-watches');

    // At most two of the 10 vendor directories have a watch: most of these files are found only by scanning.
    for (let v = 0; v < 10; v++) await writeFile(join(source, 'p2', `v${v}`, 'late.json'), p2(`v${v}/late`));
    for (let v = 0; v < 10; v++) {
      await waitFor(async () => (await fetch(`${primary!.url}/p2/v${v}/late.json`)).status === 200, {
        what: `p2/v${v}/late.json published by the fallback scan`,
        timeoutMs: 10_000,
        intervalMs: 50,
      });
    }
    expect(primary.child.exitCode).toBeNull();
    // Its log line comes through a pipe, maybe after the files it published answer.
    const running = primary;
    await waitFor(() => running.logs.some((l) => l.msg === 'source tree rescanned' && l.reason === 'fallback'), {
      what: 'a fallback rescan logged',
      timeoutMs: 5_000,
    });
  }, 120_000);
});
