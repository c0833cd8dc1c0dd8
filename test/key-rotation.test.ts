import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  SYNC_ROUTES,
  generateSigningKeyPem,
  signBody,
  signingKeyFromPem,
  type ChangesBatch,
  type KeySet,
  type SigningKey,
} from '@metasync/shared';
import { afterAll, describe, expect, it } from 'vitest';
import {
  PUBLISH_TOKEN,
  getText,
  publishPackage,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { startGateProxy, type GateProxy } from './helpers/gate-proxy.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * Key rotation end to end (docs/operations.md, "Key rotation"), with the real
 * primary and mirror processes. The mirror reaches the primary through a small
 * loopback forwarder (helpers/gate-proxy.ts) that can answer a sync route itself, to stage a forged key
 * set and a batch signed by the retired key:
 *
 *   mirror --> forwarder --(everything else)--> primary
 *                 \-- staged answers for /sync/v1/changes and /sync/v1/keys
 */

/** A batch on top of the mirror's `since` that deletes `path`: accepted, it would make the mirror answer 404. */
function forgedBatch(key: SigningKey, path: string): (url: URL) => { body: Buffer; signature: string } {
  return (url) => {
    const since = Number(url.searchParams.get('since'));
    const batch: ChangesBatch = {
      kind: 'changes',
      from: since,
      to: since + 1,
      head: since + 1,
      time: Date.now(),
      entries: [{ path, deleted: true, mtime: Date.now() }],
    };
    const body = Buffer.from(JSON.stringify(batch));
    return { body, signature: signBody(key, body) };
  };
}

async function trustedKeyIds(mirror: RunningMirror): Promise<{ keyId: string; notAfter?: number }[]> {
  return (JSON.parse(await readFile(join(mirror.dataDir, 'primary-keys.json'), 'utf8')) as { keys: { keyId: string; notAfter?: number }[] })
    .keys;
}

const logged = (mirror: RunningMirror, msg: string, since: number, match: (line: Record<string, unknown>) => boolean = () => true) =>
  mirror.logs.slice(since).some((line) => line.msg === msg && match(line));

const errMessage = (line: Record<string, unknown>) => String((line.err as { message?: unknown } | undefined)?.message ?? '');

let primary: RunningPrimary | undefined;
let mirror: RunningMirror | undefined;
let forwarder: GateProxy | undefined;

afterAll(async () => {
  await mirror?.stop();
  await forwarder?.close();
  await primary?.stop();
  await removeTempDirs();
});

describe('key rotation across real processes', () => {
  it('follows a rotation without a restart, refuses a forged key set and, after the overlap, the retired key; a restart keeps the learned set', async () => {
    primary = await startPrimary();
    const oldKey = signingKeyFromPem(await readFile(join(primary.dataDir, 'signing-key.pem'), 'utf8'));
    expect(primary.keyArg.startsWith(`${oldKey.keyId}:`)).toBe(true);
    forwarder = await startGateProxy(primary.url);
    mirror = await startMirror({ primaryUrl: forwarder.url, keyArg: primary.keyArg });
    const serves = async (version: string) => {
      const response = await getText(`${mirror!.url}/p2/acme/one.json`);
      return response.status === 200 && response.body.includes(`"${version}"`);
    };

    await publishPackage(primary.url, 'acme/one', [{ version: '1.0.0' }]);
    await waitFor(() => serves('1.0.0'), { what: 'mirror serves 1.0.0', timeoutMs: 5_000 });

    // 1. A forger between mirror and primary: a batch and a key set signed by its own key.
    const forger = signingKeyFromPem(generateSigningKeyPem());
    const forgedSet: KeySet = {
      kind: 'keys',
      version: 7,
      issuedAt: Date.now(),
      keys: [{ keyId: forger.keyId, publicKey: forger.publicKey, active: true }],
    };
    const forgedSetBody = Buffer.from(JSON.stringify(forgedSet));
    let mark = mirror.logs.length;
    forwarder.stage.set(SYNC_ROUTES.changes, forgedBatch(forger, 'p2/acme/one.json'));
    forwarder.stage.set(SYNC_ROUTES.keys, () => ({ body: forgedSetBody, signature: signBody(forger, forgedSetBody) }));
    await publishPackage(primary.url, 'acme/one', [{ version: '1.0.0' }, { version: '2.0.0' }]);
    await waitFor(() => logged(mirror!, 'refused primary key set', mark) && logged(mirror!, 'refused unsigned or forged document', mark), {
      what: 'mirror refuses the forged key set and batch',
      timeoutMs: 5_000,
    });
    expect(await serves('1.0.0')).toBe(true);
    expect((await trustedKeyIds(mirror)).map((k) => k.keyId)).toEqual([oldKey.keyId]);

    // 2. The path is clean again: the mirror converges; then the operator rotates with a 4 s overlap.
    forwarder.stage.clear();
    await waitFor(() => serves('2.0.0'), { what: 'mirror serves 2.0.0 once the forger is gone', timeoutMs: 8_000 });
    mark = mirror.logs.length;
    const overlapMs = 4_000;
    const rotation = await fetch(`${primary.url}/admin/keys/rotate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PUBLISH_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ overlapMs }),
      signal: AbortSignal.timeout(5_000),
    });
    expect(rotation.status).toBe(200);
    const rotated = (await rotation.json()) as { active: { keyId: string }; retired: { keyId: string; notAfter: number }[] };
    const notAfter = rotated.retired.find((r) => r.keyId === oldKey.keyId)?.notAfter as number;
    expect(notAfter).toBeGreaterThan(Date.now());

    await publishPackage(primary.url, 'acme/one', [{ version: '1.0.0' }, { version: '2.0.0' }, { version: '3.0.0' }]);
    await waitFor(() => serves('3.0.0'), { what: 'mirror serves 3.0.0, signed by the new key', timeoutMs: 5_000 });
    expect(mirror.child.exitCode).toBeNull();
    // Log lines reach the test through a pipe, possibly after the HTTP answer.
    await waitFor(() => logged(mirror!, 'learned primary keys', mark), { what: 'mirror logs learned primary keys', timeoutMs: 2_000 });
    expect(await trustedKeyIds(mirror)).toEqual([
      expect.objectContaining({ keyId: rotated.active.keyId }),
      expect.objectContaining({ keyId: oldKey.keyId, notAfter }),
    ]);

    // 3. After the overlap a batch signed by the retired key is refused, and the mirror keeps serving 3.0.0.
    await waitFor(async () => Date.now() > notAfter + 50, { what: 'overlap over', timeoutMs: overlapMs + 2_000 });
    mark = mirror.logs.length;
    forwarder.stage.set(SYNC_ROUTES.changes, forgedBatch(oldKey, 'p2/acme/one.json'));
    await publishPackage(primary.url, 'acme/one', [{ version: '1.0.0' }, { version: '2.0.0' }, { version: '3.0.0' }, { version: '4.0.0' }]);
    await waitFor(
      () =>
        logged(mirror!, 'refused unsigned or forged document', mark, (line) => {
          const message = errMessage(line);
          return message.includes(oldKey.keyId) && message.includes('retired since');
        }),
      { what: 'mirror refuses the batch signed by the retired key', timeoutMs: 5_000 },
    );
    expect(await serves('3.0.0')).toBe(true);
    expect(logged(mirror, 'refused primary key set', mark)).toBe(false);

    forwarder.stage.clear();
    await waitFor(() => serves('4.0.0'), { what: 'mirror serves 4.0.0 once the retired-key batch is gone', timeoutMs: 8_000 });
    const state = (await (await fetch(`${primary.url}${SYNC_ROUTES.state}`)).json()) as { keys: { keyId: string }[] };
    expect(state.keys.map((k) => k.keyId)).toEqual([rotated.active.keyId]);

    // 4. A restart with the same (old) --primary-key keeps the learned set: it follows the new key at once.
    await mirror.stop();
    mirror = await startMirror({ primaryUrl: forwarder.url, keyArg: primary.keyArg, dataDir: mirror.dataDir });
    await publishPackage(primary.url, 'acme/one', [{ version: '5.0.0' }]);
    await waitFor(() => serves('5.0.0'), { what: 'restarted mirror serves 5.0.0', timeoutMs: 5_000 });
    expect(
      mirror.logs.some(
        (line) =>
          line.msg === 'learned primary keys' ||
          line.msg === 'pinned primary key is not in the stored key set: starting over from --primary-key',
      ),
    ).toBe(false);
  }, 40_000);
});
