import {
  HEADERS,
  SYNC_ROUTES,
  changesBatchSchema,
  keySetSchema,
  snapshotSchema,
  verifySnapshotBody,
  stateResponseSchema,
  verifyBody,
  type PublicKeyInfo,
} from '@metasync/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { TEST_TOKEN, publish, startTestPrimary, type TestPrimary } from './primary-fixture.js';

/** POST /admin/keys/rotate and GET /sync/v1/keys?signer= (docs/protocol.md, "Key rotation"). */
let primary: TestPrimary;
afterEach(async () => {
  await primary.close();
});

const rotate = (p: TestPrimary, body: unknown, token = TEST_TOKEN) =>
  p.app.inject({
    method: 'POST',
    url: '/admin/keys/rotate',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    payload: JSON.stringify(body),
  });

describe('key rotation on the primary', () => {
  it('rotates without a restart: state, changes and snapshot are signed by the new key, and the old key endorses the new set', async () => {
    primary = await startTestPrimary();
    await publish(primary, 'p2/acme/foo.json', '{"a":1}');
    const old: PublicKeyInfo = { keyId: primary.core.key.keyId, publicKey: primary.core.key.publicKey, active: true };

    const response = await rotate(primary, { overlapMs: 60_000 });
    expect(response.statusCode).toBe(200);
    const result = response.json<{ version: number; active: PublicKeyInfo; retired: { keyId: string; notAfter: number }[] }>();
    expect(result.version).toBe(1);
    expect(result.retired.map((r) => r.keyId)).toEqual([old.keyId]);
    const fresh = result.active;

    for (const url of [`${SYNC_ROUTES.state}?nonce=AAAAAAAAAAAAAAAAAAAAAA`, `${SYNC_ROUTES.changes}?since=0`, SYNC_ROUTES.snapshot]) {
      const signed = await primary.app.inject({ url });
      expect(signed.headers[HEADERS.signature], url).toMatch(new RegExp(`^${fresh.keyId}\\.`));
      const signature = signed.headers[HEADERS.signature] as string;
      // A snapshot is signed through its statement of the body (verifySnapshotBody takes a body signed whole as well).
      const statement = signed.headers[HEADERS.snapshotStatement] as string | undefined;
      verifySnapshotBody(signed.rawPayload, { signature, statement }, { keys: [fresh], nowMs: Date.now(), what: url });
    }
    changesBatchSchema.parse((await primary.app.inject({ url: `${SYNC_ROUTES.changes}?since=0` })).json());
    snapshotSchema.parse((await primary.app.inject({ url: SYNC_ROUTES.snapshot })).json());
    const state = stateResponseSchema.parse((await primary.app.inject({ url: SYNC_ROUTES.state })).json());
    expect(state.keys.map((k) => [k.keyId, k.active])).toEqual([
      [fresh.keyId, true],
      [old.keyId, false],
    ]);

    // A mirror that trusts only the old key asks for the key set signed by it.
    const endorsed = await primary.app.inject({ url: `${SYNC_ROUTES.keys}?signer=${old.keyId}` });
    expect(endorsed.statusCode).toBe(200);
    verifyBody(endorsed.rawPayload, endorsed.headers[HEADERS.signature] as string, { keys: [old], nowMs: Date.now(), what: 'keys' });
    const keySet = keySetSchema.parse(endorsed.json());
    expect(keySet.version).toBe(1);
    expect(keySet.keys[0]).toEqual(fresh);
    expect(keySet.keys[1]).toMatchObject({ keyId: old.keyId, active: false, notAfter: expect.any(Number) as number });
  });

  it('answers 400 for a signer it cannot sign with, and the admin call needs an admin token', async () => {
    primary = await startTestPrimary();
    const unknown = await primary.app.inject({ url: `${SYNC_ROUTES.keys}?signer=0123456789abcdef` });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json()).toMatchObject({ code: 'METASYNC_ERR_REQUEST_INVALID' });
    const before = primary.core.key.keyId;
    expect((await rotate(primary, {}, 'wrong-token')).statusCode).toBe(401);
    expect((await primary.app.inject({ method: 'POST', url: '/admin/keys/rotate' })).statusCode).toBe(401);
    expect((await rotate(primary, { overlapMs: -5 })).statusCode).toBe(400);
    expect((await rotate(primary, { overlapMs: '1h' })).statusCode).toBe(400);
    expect(primary.core.key.keyId).toBe(before);
  });

  it('stops endorsing with a retired key once its overlap is over', async () => {
    primary = await startTestPrimary();
    const old = primary.core.key.keyId;
    expect((await rotate(primary, { overlapMs: 0 })).statusCode).toBe(200);
    expect((await primary.app.inject({ url: `${SYNC_ROUTES.keys}?signer=${old}` })).statusCode).toBe(400);
    const state = stateResponseSchema.parse((await primary.app.inject({ url: SYNC_ROUTES.state })).json());
    expect(state.keys.map((k) => k.keyId)).toEqual([primary.core.key.keyId]);
  });
});
