import Fastify, { type FastifyRequest } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createTokenCheck, verifyBearer, type BearerOutcome } from './bearer-token.js';

const apps: ReturnType<typeof Fastify>[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

/** The outcome verifyBearer gives for a request carrying `authorization` (or none). */
async function outcomeFor(
  authorization: string | undefined,
  verify: (token: string) => string | undefined,
): Promise<BearerOutcome<string>> {
  const app = Fastify();
  apps.push(app);
  let outcome: BearerOutcome<string> | undefined;
  app.post('/admin/x', async (request: FastifyRequest) => {
    outcome = verifyBearer(request, verify, { tokenName: 'admin token', invalidDetail: ' (unknown or revoked)' });
    return {};
  });
  await app.inject({ method: 'POST', url: '/admin/x', headers: authorization === undefined ? {} : { authorization } });
  if (outcome === undefined) throw new Error('the route did not run');
  return outcome;
}

const known = (token: string): string | undefined => (token === 'good' ? 'caller-1' : undefined);

describe('verifyBearer', () => {
  it('answers AUTH_MISSING naming the route and the token, without a header', async () => {
    const outcome = await outcomeFor(undefined, known);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error).toMatchObject({ code: 'METASYNC_ERR_AUTH_MISSING', details: { field: 'authorization', rule: 'bearer-token' } });
    expect(outcome.error.message).toBe('POST /admin/x needs Authorization: Bearer <admin token>');
  });

  it('answers AUTH_INVALID for a token verify does not know, and for a header that is not Bearer', async () => {
    for (const header of ['Bearer wrong', 'Basic Z29vZA==', 'Bearer', 'Bearer good extra']) {
      const outcome = await outcomeFor(header, known);
      expect(outcome.ok, header).toBe(false);
      if (outcome.ok) continue;
      expect(outcome.error, header).toMatchObject({
        code: 'METASYNC_ERR_AUTH_INVALID',
        details: { field: 'authorization', rule: 'bearer-token' },
      });
      expect(outcome.error.message).toBe('POST /admin/x: the bearer token is not valid (unknown or revoked)');
    }
  });

  it("returns verify's caller for a valid token, the scheme in any case and padded with spaces", async () => {
    for (const header of ['Bearer good', 'bearer good', 'BEARER   good  ']) {
      expect(await outcomeFor(header, known), header).toEqual({ ok: true, caller: 'caller-1' });
    }
  });
});

describe('createTokenCheck', () => {
  it('accepts only the exact configured token, whatever the presented length', () => {
    const check = createTokenCheck('admin-secret-token');
    expect(check('admin-secret-token')).toBe(true);
    expect(check('admin-secret-toke')).toBe(false);
    expect(check('admin-secret-token-and-more')).toBe(false);
    expect(check('')).toBe(false);
  });
});
