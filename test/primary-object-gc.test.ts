import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from './helpers/daemon.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * The built primary with its object GC configured through the real flags and
 * env twins: a superseded p2 file stays fetchable by hash through its grace
 * window, then disappears from the local store (404 on the sync API, counted
 * in /metrics, logged), while the head's objects are always served.
 */
const TOKEN = 'gc-e2e-token';
const GRACE_MS = 2_000;

let daemon: Daemon | undefined;
let dir: string | undefined;
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

const sha256Hex = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
const version = (v: string) => ({ version: v, dist: { type: 'zip', url: `https://example.org/acme-foo-${v}.zip`, reference: `ref-${v}` } });

describe('primary object GC (built daemon)', () => {
  it('keeps a superseded object through the grace window, then deletes it; the head stays served', async () => {
    dir = await mkdtemp(join(tmpdir(), 'metasync-gc-e2e-'));
    daemon = await startDaemon({
      bin: 'primary',
      args: ['--data', join(dir, 'data'), '--listen', '127.0.0.1:0', '--journal-keep', '1', '--object-gc-interval-ms', '100'],
      env: { METASYNC_PUBLISH_TOKEN: TOKEN, METASYNC_OBJECT_GC_GRACE_MS: String(GRACE_MS) },
    });
    const url = daemon.url;
    const p2Sha = async (): Promise<string> => sha256Hex(Buffer.from(await (await fetch(`${url}/p2/acme/foo.json`)).arrayBuffer()));
    const objectStatus = async (sha256: string): Promise<number> => (await fetch(`${url}/sync/v1/objects/${sha256}`)).status;
    const shas: string[] = [];
    const versions: ReturnType<typeof version>[] = [];
    for (const v of ['1.0.0', '1.1.0', '1.2.0']) {
      versions.push(version(v));
      const put = await fetch(`${url}/api/v1/packages/acme/foo`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ versions }),
      });
      expect(put.status).toBe(200);
      shas.push(await p2Sha());
    }
    const [first, second, head] = shas as [string, string, string];
    const supersededAtMs = Date.now();
    // Out of the one-generation journal window already, but inside its grace.
    expect(await objectStatus(first)).toBe(200);
    await waitFor(async () => (await objectStatus(first)) === 404 && (await objectStatus(second)) === 404, {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: 'superseded objects collected',
    });
    expect(Date.now() - supersededAtMs).toBeGreaterThanOrEqual(GRACE_MS - 200);
    expect(await objectStatus(head)).toBe(200);
    expect(await p2Sha()).toBe(head);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(Number(/^metasync_object_gc_deleted_objects_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2);
    expect(
      daemon.logs.some(
        (line) =>
          line.msg === 'object gc run' && typeof line.deleted === 'number' && line.deleted > 0 && typeof line.bytesFreed === 'number',
      ),
    ).toBe(true);
  });
});
