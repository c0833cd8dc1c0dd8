import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import {
  PUBLISH_TOKEN,
  getChecked,
  publishMany,
  publishPackage,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { startS3Server, TEST_S3_ENV, type S3TestServer } from './helpers/s3-server.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * Real primary with S3 write-through to fauxqs; a new mirror bootstraps from
 * the bucket (not from the primary), then follows the primary.
 */
let s3: S3TestServer | undefined;
let primary: RunningPrimary | undefined;
let mirror: RunningMirror | undefined;
let lonePrimary: RunningPrimary | undefined;

afterEach(() => {
  vi.unstubAllEnvs();
});
afterAll(async () => {
  await lonePrimary?.stop();
  await mirror?.stop();
  await primary?.stop();
  await s3?.stop();
  await removeTempDirs();
});

const COUNT = 24;

function logged(
  daemon: RunningPrimary | RunningMirror,
  msg: string,
  match: (entry: Record<string, unknown>) => boolean = () => true,
): Record<string, unknown> | undefined {
  return daemon.logs.find((entry) => entry.msg === msg && match(entry));
}

describe('S3 bootstrap of a new mirror', () => {
  it('bootstraps a new mirror from the bucket with no object from the primary, then follows the primary', async () => {
    const server = await startS3Server(['metasync']);
    s3 = server;
    // The daemons read credentials through the AWS SDK's standard chain: the environment.
    for (const [name, value] of Object.entries(TEST_S3_ENV)) vi.stubEnv(name, value);
    const s3Args = (flag: string): string[] => [
      `--${flag}bucket`,
      'metasync',
      `--${flag}prefix`,
      'eu',
      `--${flag}endpoint`,
      server.endpoint,
      `--${flag}region`,
      'us-east-1',
      `--${flag}force-path-style`,
    ];

    // Snapshots reach the bucket on the interval: the head is uploaded within 300 ms of the last publish.
    primary = await startPrimary({ args: [...s3Args('s3-'), '--snapshot-every', '1000', '--snapshot-interval-ms', '300'] });
    const p = primary;
    const seq = await publishMany(p.url, { vendor: 'acme', count: COUNT, version: '1.0.0', padBytes: 500 });
    const uploaded = await waitFor(() => logged(p, 's3 snapshot durable', (entry) => entry.seq === seq), {
      timeoutMs: 15_000,
      what: `snapshot ${seq} in the bucket`,
    });
    expect(uploaded).toMatchObject({ bucket: 'metasync', key: expect.stringMatching(/^eu\/snapshots\/\d{16}-\d+\.json$/) as unknown });

    mirror = await startMirror({ primaryUrl: p.url, keyArg: p.keyArg, args: [...s3Args('bootstrap-s3-'), '--poll-interval-ms', '200'] });
    const m = mirror;
    const applied = await waitFor(() => logged(m, 'snapshot applied'), { timeoutMs: 15_000, what: 'the mirror applying a snapshot' });
    expect(applied).toMatchObject({ source: 's3', seq, objectsFetched: 0 });
    expect(logged(m, 's3 bootstrap fetched objects')).toMatchObject({ refused: 0, objectsPresent: 0 });
    expect(logged(m, 'resyncing from snapshot')).toBeUndefined();

    for (let i = 0; i < COUNT; i++) {
      const [fromMirror, fromPrimary] = await Promise.all([
        getChecked(`${m.url}/p2/acme/p${i}.json`),
        getChecked(`${p.url}/p2/acme/p${i}.json`),
      ]);
      expect(fromMirror.status).toBe(200);
      expect(fromMirror.hashOk).toBe(true);
      expect(fromMirror.body.equals(fromPrimary.body)).toBe(true);
    }

    // Follows the primary after the bootstrap: a publish reaches it through changes?since=<snapshot seq>.
    const next = await publishPackage(p.url, 'acme/after-bootstrap', [
      { version: '2.0.0', description: 'published after the mirror bootstrapped' },
    ]);
    expect(next).toBe(seq + 1);
    const served = await waitFor(
      async () => {
        const response = await getChecked(`${m.url}/p2/acme/after-bootstrap.json`);
        return response.status === 200 && response.body.toString('utf8').includes('published after the mirror bootstrapped')
          ? response
          : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 50, what: 'the publish after bootstrap on the mirror' },
    );
    expect(served.hashOk).toBe(true);
    const followed = await waitFor(() => logged(m, 'generation applied', (entry) => entry.seq === next), {
      timeoutMs: 10_000,
      what: `generation ${next} applied on the mirror`,
    });
    expect(followed).toMatchObject({ from: seq });
    const synced = await getChecked(`${m.url}/p2/acme/after-bootstrap.json`);
    expect(synced.headers.get('x-metasync-proxied')).toBeNull();
    expect(synced.body.equals(served.body)).toBe(true);
  }, 60_000);

  it('refuses a publish and announces nothing while its objects cannot reach the bucket', async () => {
    const server = s3 ?? (s3 = await startS3Server(['metasync']));
    for (const [name, value] of Object.entries(TEST_S3_ENV)) vi.stubEnv(name, value);
    lonePrimary = await startPrimary({
      args: ['--s3-bucket', 'not-created-yet', '--s3-endpoint', server.endpoint, '--s3-region', 'us-east-1', '--s3-force-path-style'],
    });
    const response = await fetch(`${lonePrimary.url}/api/v1/packages/acme/refused`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${PUBLISH_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ versions: [{ version: '1.0.0', dist: { type: 'zip', url: 'https://example.invalid/a.zip' } }] }),
      signal: AbortSignal.timeout(15_000),
    });
    const body = (await response.json()) as { code?: string; message?: string };
    expect(response.status).toBe(502);
    expect(body.code).toBe('METASYNC_ERR_S3_CALL_FAILED');
    expect(body.message).toContain('s3://not-created-yet/objects/');
    const state = (await (await fetch(`${lonePrimary.url}/sync/v1/state`)).json()) as { seq: number };
    expect(state.seq).toBe(0);
    expect((await getChecked(`${lonePrimary.url}/p2/acme/refused.json`)).status).toBe(404);

    await server.createBucket('not-created-yet');
    await expect(publishPackage(lonePrimary.url, 'acme/refused', [{ version: '1.0.0' }])).resolves.toBe(1);
  }, 60_000);
});
