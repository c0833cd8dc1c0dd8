import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from './daemon.js';

/**
 * A real primary (publish API on) and real mirrors from the built bins, in
 * temp dirs; `stop()` stops every process and removes the dirs.
 */
export interface Cluster {
  primary: Daemon;
  token: string;
  root: string;
  publish(name: string, version: string): Promise<void>;
  startMirror(options: {
    mirrorId: string;
    region: string;
    primaryUrl?: string;
    args?: string[];
  }): Promise<{ daemon: Daemon; dataDir: string }>;
  headSeq(): Promise<number>;
  stop(): Promise<void>;
}

export async function startCluster(): Promise<Cluster> {
  const root = await mkdtemp(join(tmpdir(), 'metasync-cluster-'));
  const token = 'cluster-test-token';
  const daemons: Daemon[] = [];
  const primary = await startDaemon({
    bin: 'primary',
    args: ['--data', join(root, 'primary'), '--listen', '127.0.0.1:0', '--heartbeat-ms', '1000'],
    env: { METASYNC_PUBLISH_TOKEN: token },
  });
  daemons.push(primary);
  return {
    primary,
    token,
    root,
    async publish(name, version) {
      const response = await fetch(`${primary.url}/api/v1/packages/${name}/versions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          name,
          version,
          dist: { type: 'zip', url: `https://example.test/${name}/${version}.zip`, reference: 'a'.repeat(40) },
        }),
      });
      if (!response.ok) throw new Error(`publishing ${name} ${version} answered ${response.status}: ${await response.text()}`);
    },
    async startMirror(options) {
      const dataDir = join(root, `mirror-${options.mirrorId}`);
      const daemon = await startDaemon({
        bin: 'mirror',
        args: [
          '--primary',
          options.primaryUrl ?? primary.url,
          '--data',
          dataDir,
          '--listen',
          '127.0.0.1:0',
          '--region',
          options.region,
          '--mirror-id',
          options.mirrorId,
          ...(options.args ?? []),
        ],
      });
      daemons.push(daemon);
      return { daemon, dataDir };
    },
    async headSeq() {
      const state = (await (await fetch(`${primary.url}/sync/v1/state`)).json()) as { seq: number };
      return state.seq;
    },
    async stop() {
      await Promise.all(daemons.map((d) => d.stop()));
      await rm(root, { recursive: true, force: true });
    },
  };
}
