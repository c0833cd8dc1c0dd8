/**
 * The main job, for a person at a terminal: starts a primary and two mirrors on
 * 127.0.0.1 with sample packages, prints how to point Composer at them and how
 * to publish, and keeps running until Ctrl-C (or `--exit-after-ms N`, used by
 * the test that checks this script works).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startDaemon, type Daemon } from '../test/helpers/daemon.js';
import { waitFor } from '../test/helpers/wait-for.js';

const SAMPLE_PACKAGES: Record<string, object[]> = {
  'acme/hello': [
    {
      version: '1.0.0',
      dist: { type: 'zip', url: 'https://example.invalid/acme/hello/1.0.0.zip', reference: 'a1' },
      require: { php: '>=8.1' },
    },
    {
      version: '1.1.0',
      dist: { type: 'zip', url: 'https://example.invalid/acme/hello/1.1.0.zip', reference: 'a2' },
      require: { php: '>=8.1' },
    },
    {
      version: 'dev-main',
      source: { type: 'git', url: 'https://example.invalid/acme/hello.git', reference: 'b7' },
      require: { php: '>=8.1' },
    },
  ],
  'acme/greeter': [
    {
      version: '2.0.0',
      dist: { type: 'zip', url: 'https://example.invalid/acme/greeter/2.0.0.zip', reference: 'c3' },
      require: { 'acme/hello': '^1.0' },
    },
  ],
};

function argValue(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at === -1 ? undefined : process.argv[at + 1];
}

async function main(): Promise<void> {
  const exitAfterMs = Number(argValue('--exit-after-ms') ?? 0);
  const root = await mkdtemp(join(tmpdir(), 'metasync-demo-'));
  const token = randomBytes(16).toString('hex');
  const daemons: Daemon[] = [];
  const shutdown = async (): Promise<void> => {
    await Promise.all(daemons.map((d) => d.stop()));
    await rm(root, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void shutdown().then(() => process.exit(0)));
  process.once('SIGTERM', () => void shutdown().then(() => process.exit(0)));
  try {
    const primary = await startDaemon({
      bin: 'primary',
      args: ['--data', join(root, 'primary'), '--listen', '127.0.0.1:0'],
      env: { METASYNC_PUBLISH_TOKEN: token },
    });
    daemons.push(primary);
    let seq = 0;
    for (const [name, versions] of Object.entries(SAMPLE_PACKAGES)) {
      const response = await fetch(`${primary.url}/api/v1/packages/${name}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ versions }),
      });
      if (!response.ok) throw new Error(`publishing ${name} failed: ${response.status} ${await response.text()}`);
      seq = ((await response.json()) as { seq: number }).seq;
    }
    // Each mirror is pinned to the primary's key and enrolled (its acks need the credential), as `metasync mirror up` sets them up.
    const state = (await (await fetch(`${primary.url}/sync/v1/state`)).json()) as {
      keys: { keyId: string; publicKey: string; active: boolean }[];
    };
    const key = state.keys.find((k) => k.active)!;
    const mirrors: Daemon[] = [];
    for (const region of ['eu-west', 'us-east']) {
      const mirrorId = `demo-${region}`;
      const enrolled = await fetch(`${primary.url}/admin/mirrors/${mirrorId}/credential`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
      if (!enrolled.ok) throw new Error(`enrolling ${mirrorId} failed: ${enrolled.status} ${await enrolled.text()}`);
      const { credential } = (await enrolled.json()) as { credential: string };
      const mirror = await startDaemon({
        bin: 'mirror',
        args: [
          '--primary',
          primary.url,
          '--data',
          join(root, `mirror-${region}`),
          '--listen',
          '127.0.0.1:0',
          '--region',
          region,
          '--mirror-id',
          mirrorId,
          '--primary-key',
          `${key.keyId}:${key.publicKey}`,
        ],
        env: { METASYNC_MIRROR_CREDENTIAL: credential },
      });
      daemons.push(mirror);
      mirrors.push(mirror);
    }
    for (const mirror of mirrors) {
      await waitFor(async () => (await fetch(`${mirror.url}/p2/acme/greeter.json`)).ok, {
        timeoutMs: 15_000,
        what: `${mirror.url} to sync`,
      });
    }
    console.log(`
metasync demo is running (generation ${seq}). Data in ${root}

  primary   ${primary.url}          (status page: ${primary.url}/status)
  mirror    ${mirrors[0]!.url}   (region eu-west)
  mirror    ${mirrors[1]!.url}   (region us-east)

Point Composer at a mirror (packagist.org disabled), e.g. in composer.json:
  "repositories": [{"type": "composer", "url": "${mirrors[0]!.url}"}, {"packagist.org": false}],
  "config": {"secure-http": false},
  "require": {"acme/greeter": "^2.0"}

Publish a new version (it reaches both mirrors in well under a second):
  curl -X POST ${primary.url}/api/v1/packages/acme/hello/versions \\
    -H 'authorization: Bearer ${token}' -H 'content-type: application/json' \\
    -d '{"version":"1.2.0","dist":{"type":"zip","url":"https://example.invalid/acme/hello/1.2.0.zip","reference":"a3"}}'
  curl -s ${mirrors[1]!.url}/p2/acme/hello.json

Mirrors and their lag:  curl -s ${primary.url}/sync/v1/mirrors
Ctrl-C stops everything.`);
    if (exitAfterMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, exitAfterMs));
      await shutdown();
      return;
    }
    await new Promise(() => undefined);
  } catch (err) {
    await shutdown();
    throw err;
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
