import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '@metasync/dns';
import { createLocalLauncher } from './local.js';
import { mirrorDir, pidPath, writeRecord } from './local-state.js';

describe('local launcher state and safety', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'metasync-launch-local-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const launcher = () =>
    createLocalLauncher({ dir, releases: {}, addresses: [], mirrorArgs: [], clock: systemClock, stopTimeoutMs: 1_000 });

  it('never signals a process whose command line is not the recorded mirror (a reused pid)', async () => {
    const stranger = spawn('sleep', ['30'], { stdio: 'ignore' });
    const exited = new Promise((resolve) => stranger.once('exit', resolve));
    try {
      await writeRecord(dir, {
        mirrorId: 'm1',
        region: 'eu',
        releaseVersion: '0.1.0',
        port: 9,
        address: '127.0.0.1',
        url: 'http://127.0.0.1:9',
        healthUrl: 'http://127.0.0.1:9/health/fresh',
        dataDir: join(mirrorDir(dir, 'm1'), 'data'),
        logFile: join(mirrorDir(dir, 'm1'), 'mirror.log'),
        main: '/nonexistent/main.js',
      });
      await writeFile(pidPath(dir, 'm1'), `${stranger.pid}\n`);
      expect(await launcher().find('m1')).toMatchObject({ mirrorId: 'm1', state: 'stopped', serverId: '' });
      const lines: string[] = [];
      await launcher().destroy('m1', (line) => lines.push(line));
      expect(lines.join('\n')).toContain(`pid ${stranger.pid} of m1's pid file is another process now: not signalling it`);
      expect(stranger.exitCode).toBeNull();
      expect(stranger.signalCode).toBeNull();
      expect(existsSync(mirrorDir(dir, 'm1'))).toBe(false);
      expect(await launcher().list()).toEqual([]);
    } finally {
      stranger.kill('SIGKILL');
      await exited;
    }
  });

  it('destroying a mirror it has no record of is a no-op, and an unknown release or a bad id is refused before anything starts', async () => {
    await launcher().destroy('nobody');
    const spec = { mirrorId: 'm2', region: 'eu', releaseVersion: '9.9.9-unknown', primaryUrl: 'http://127.0.0.1:9', primaryKey: 'k:v' };
    await expect(launcher().launch(spec)).rejects.toMatchObject({
      code: 'METASYNC_ERR_CLI_USAGE',
      message: expect.stringContaining('release 9.9.9-unknown is unknown'),
    });
    await expect(launcher().launch({ ...spec, mirrorId: '../escape' })).rejects.toMatchObject({ code: 'METASYNC_ERR_CLI_USAGE' });
    expect(existsSync(join(dir, 'mirrors'))).toBe(false);
  });
});
