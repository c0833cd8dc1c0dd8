import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from './daemon.js';

/**
 * A real primary (publish API on) and real mirrors from the built bins, in
 * temp dirs; `stop()` stops every process and removes the dirs. Mirrors are
 * enrolled (a credential from the primary's admin API, in their environment)
 * and pinned to the primary's key, as `metasync mirror up` would set them up.
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
    /** Default true: enroll the mirror id and pass its credential. */
    enroll?: boolean;
  }): Promise<{ daemon: Daemon; dataDir: string; credential: string | undefined }>;
  /** Issues a credential for a mirror id through the admin API. */
  enroll(mirrorId: string): Promise<string>;
  /** `--primary-key` value of the primary's active key. */
  keyArg(): Promise<string>;
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
  const enroll = async (mirrorId: string): Promise<string> => {
    const response = await fetch(`${primary.url}/admin/mirrors/${mirrorId}/credential`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    if (!response.ok) throw new Error(`enrolling ${mirrorId} answered ${response.status}: ${await response.text()}`);
    return ((await response.json()) as { credential: string }).credential;
  };
  const keyArg = async (): Promise<string> => {
    const state = (await (await fetch(`${primary.url}/sync/v1/state`)).json()) as {
      keys: { keyId: string; publicKey: string; active: boolean }[];
    };
    const key = state.keys.find((k) => k.active)!;
    return `${key.keyId}:${key.publicKey}`;
  };
  return {
    primary,
    token,
    root,
    enroll,
    keyArg,
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
      const credential = options.enroll === false ? undefined : await enroll(options.mirrorId);
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
          '--primary-key',
          await keyArg(),
          ...(options.args ?? []),
        ],
        ...(credential === undefined ? {} : { env: { METASYNC_MIRROR_CREDENTIAL: credential } }),
      });
      daemons.push(daemon);
      return { daemon, dataDir, credential };
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
