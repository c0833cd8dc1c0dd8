import { HEADERS, SYNC_ROUTES, stateResponseSchema, verifyBody } from '@metasync/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { publish, startTestPrimary, type TestPrimary } from './primary-fixture.js';

/** The freshness challenge (docs/protocol.md): state is signed and echoes the mirror's nonce. */
let primary: TestPrimary;
afterEach(async () => {
  await primary.close();
});

function trusted(p: TestPrimary): { keyId: string; publicKey: string; active: true }[] {
  return [{ keyId: p.core.key.keyId, publicKey: p.core.key.publicKey, active: true }];
}

describe('state challenge', () => {
  it('signs the state and echoes the nonce, so each challenge gets its own signed answer', async () => {
    primary = await startTestPrimary();
    await publish(primary, 'p2/acme/foo.json', '{"a":1}');
    const answers = [];
    for (const nonce of ['AAAAAAAAAAAAAAAAAAAAAA', 'BBBBBBBBBBBBBBBBBBBBBB']) {
      const response = await primary.app.inject({ url: `${SYNC_ROUTES.state}?nonce=${nonce}` });
      expect(response.statusCode).toBe(200);
      expect(response.headers['cache-control']).toBe('no-store');
      verifyBody(response.rawPayload, response.headers[HEADERS.signature] as string, {
        keys: trusted(primary),
        nowMs: Date.now(),
        what: 'state',
      });
      const state = stateResponseSchema.parse(response.json());
      expect(state).toMatchObject({ nonce, seq: 1 });
      answers.push(response.headers[HEADERS.signature]);
    }
    expect(answers[0]).not.toBe(answers[1]);
  });

  it('signs the state without a nonce too, and leaves the nonce out', async () => {
    primary = await startTestPrimary();
    const response = await primary.app.inject({ url: SYNC_ROUTES.state });
    verifyBody(response.rawPayload, response.headers[HEADERS.signature] as string, {
      keys: trusted(primary),
      nowMs: Date.now(),
      what: 'state',
    });
    expect(stateResponseSchema.parse(response.json()).nonce).toBeUndefined();
  });

  it('rejects a malformed nonce with 400', async () => {
    primary = await startTestPrimary();
    for (const nonce of ['short', 'x'.repeat(129), 'has%20space%20in%20it%20ok']) {
      const response = await primary.app.inject({ url: `${SYNC_ROUTES.state}?nonce=${nonce}` });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ code: 'METASYNC_ERR_REQUEST_INVALID' });
    }
  });
});
