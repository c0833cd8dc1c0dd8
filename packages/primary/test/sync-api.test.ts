import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import {
  HEADERS,
  PACK_CONTENT_TYPE,
  SYNC_ROUTES,
  changesBatchSchema,
  mirrorsResponseSchema,
  packFrameHeaderSchema,
  resyncResponseSchema,
  sha256Hex,
  snapshotSchema,
  stateResponseSchema,
  verifyBody,
  verifySnapshotBody,
  type PublicKeyInfo,
} from '@metasync/shared';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { variantsOf } from '@metasync/store';
import { DEFER_BROTLI_FROM_PATHS } from '../src/publish/publisher.js';
import { framesOf, publish, startTestPrimary, type TestPrimary } from './primary-fixture.js';

let primary: TestPrimary;
afterEach(async () => {
  vi.useRealTimers();
  await primary.close();
});

async function keysOf(p: TestPrimary): Promise<PublicKeyInfo[]> {
  const response = await p.app.inject({ url: SYNC_ROUTES.state });
  return stateResponseSchema.parse(response.json()).keys;
}

describe('sync API', () => {
  it('reports state with the head seq, retention bounds and the signing key', async () => {
    primary = await startTestPrimary();
    await publish(primary, 'p2/acme/foo.json', '{"a":1}');
    const state = stateResponseSchema.parse((await primary.app.inject({ url: SYNC_ROUTES.state })).json());
    expect(state).toMatchObject({ protocol: 1, seq: 1, oldestSeq: 0, snapshotSeq: 0 });
    expect(state.keys).toEqual([{ keyId: primary.core.key.keyId, publicKey: primary.core.key.publicKey, active: true }]);
  });

  it('answers changes since M as one signed batch merged last-write-wins', async () => {
    primary = await startTestPrimary();
    await publish(primary, 'p2/acme/foo.json', '{"v":1}');
    await publish(primary, 'p2/acme/bar.json', '{"v":1}');
    await publish(primary, 'p2/acme/foo.json', '{"v":2}');
    await primary.core.publisher.submit([{ path: 'p2/acme/bar.json', deleted: true }], 'api');
    const response = await primary.app.inject({ url: `${SYNC_ROUTES.changes}?since=1` });
    expect(response.statusCode).toBe(200);
    const body = response.rawPayload;
    verifyBody(body, response.headers[HEADERS.signature] as string, { keys: await keysOf(primary), nowMs: Date.now(), what: 'changes' });
    const batch = changesBatchSchema.parse(JSON.parse(body.toString()));
    expect(batch).toMatchObject({ kind: 'changes', from: 1, to: 4, head: 4 });
    expect(batch.entries).toHaveLength(2);
    expect(batch.entries.find((e) => e.path === 'p2/acme/foo.json')).toMatchObject({ sha256: sha256Hex('{"v":2}') });
    expect(batch.entries.find((e) => e.path === 'p2/acme/bar.json')).toMatchObject({ deleted: true });
    expect(JSON.stringify(batch)).not.toContain('origin');
  });

  it('rejects a batch whose bytes were altered after signing', async () => {
    primary = await startTestPrimary();
    await publish(primary, 'p2/acme/foo.json', '{"v":1}');
    const response = await primary.app.inject({ url: `${SYNC_ROUTES.changes}?since=0` });
    const tampered = Buffer.from(response.rawPayload.toString().replace('p2/acme/foo', 'p2/acme/fox'));
    expect(() => verifyBody(tampered, response.headers[HEADERS.signature] as string, { keys: [], nowMs: 0, what: 'changes' })).toThrow();
    expect(() =>
      verifyBody(tampered, response.headers[HEADERS.signature] as string, { keys: stateKeys(primary), nowMs: Date.now(), what: 'changes' }),
    ).toThrow(/does not verify/);
  });

  it('caps a batch at `limit` generations and says so with to < head', async () => {
    primary = await startTestPrimary();
    for (let i = 0; i < 5; i++) await publish(primary, `p2/acme/p${i}.json`, `{"i":${i}}`);
    const batch = changesBatchSchema.parse((await primary.app.inject({ url: `${SYNC_ROUTES.changes}?since=1&limit=2` })).json());
    expect(batch).toMatchObject({ from: 1, to: 3, head: 5 });
    expect(batch.entries.map((e) => e.path)).toEqual(['p2/acme/p1.json', 'p2/acme/p2.json']);
  });

  it('answers 410 with a resync hint when since is older than the journal keeps', async () => {
    primary = await startTestPrimary({ keepGenerations: 2 });
    for (let i = 0; i < 5; i++) await publish(primary, `p2/acme/p${i}.json`, `{"i":${i}}`);
    const response = await primary.app.inject({ url: `${SYNC_ROUTES.changes}?since=2` });
    expect(response.statusCode).toBe(410);
    expect(resyncResponseSchema.parse(response.json())).toMatchObject({ code: 'METASYNC_ERR_SYNC_RESYNC_REQUIRED', oldestSeq: 3 });
    expect((await primary.app.inject({ url: `${SYNC_ROUTES.changes}?since=3` })).statusCode).toBe(200);
  });

  it.each(['', 'since=', 'since=-1', 'since=abc', 'since=1.5', 'since=99', 'since=0&limit=0'])(
    'rejects changes?%s with 400',
    async (query) => {
      primary = await startTestPrimary();
      const response = await primary.app.inject({ url: `${SYNC_ROUTES.changes}?${query}` });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ code: 'METASYNC_ERR_REQUEST_INVALID' });
    },
  );

  it('serves objects by hash, precompressed when accepted, immutable', async () => {
    primary = await startTestPrimary();
    const text = '{"packages":{"acme/foo":[]}}'.repeat(20);
    await publish(primary, 'p2/acme/foo.json', text);
    const sha = sha256Hex(text);
    const br = await primary.app.inject({ url: `${SYNC_ROUTES.objects}/${sha}`, headers: { 'accept-encoding': 'gzip, br' } });
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers['cache-control']).toContain('immutable');
    expect(brotliDecompressSync(br.rawPayload).toString()).toBe(text);
    const gz = await primary.app.inject({ url: `${SYNC_ROUTES.objects}/${sha}`, headers: { 'accept-encoding': 'gzip' } });
    expect(gunzipSync(gz.rawPayload).toString()).toBe(text);
    const raw = await primary.app.inject({ url: `${SYNC_ROUTES.objects}/${sha}` });
    expect(raw.headers['content-encoding']).toBeUndefined();
    expect(raw.body).toBe(text);
    const missing = await primary.app.inject({ url: `${SYNC_ROUTES.objects}/${sha256Hex('nope')}` });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ code: 'METASYNC_ERR_OBJECT_NOT_FOUND' });
    expect((await primary.app.inject({ url: `${SYNC_ROUTES.objects}/ABC` })).statusCode).toBe(400);
  });

  it('streams many objects in one framed pack, marking missing ones', async () => {
    primary = await startTestPrimary();
    await publish(primary, 'p2/acme/a.json', '{"a":1}');
    await publish(primary, 'p2/acme/b.json', '{"b":2}');
    const wanted = [sha256Hex('{"a":1}'), sha256Hex('nope'), sha256Hex('{"b":2}')];
    const response = await primary.app.inject({ method: 'POST', url: SYNC_ROUTES.objectPack, payload: { objects: wanted } });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe(PACK_CONTENT_TYPE);
    const frames: { sha256: string; missing?: boolean; text: string }[] = [];
    for (const { header, bytes } of await framesOf(response.rawPayload, wanted)) {
      const decoded = header.encoding === 'br' ? brotliDecompressSync(bytes) : bytes;
      frames.push({ sha256: header.sha256, ...(header.missing ? { missing: true } : {}), text: decoded.toString() });
    }
    expect(frames).toEqual([
      { sha256: wanted[0], text: '{"a":1}' },
      { sha256: wanted[1], missing: true, text: '' },
      { sha256: wanted[2], text: '{"b":2}' },
    ]);
    const bad = await primary.app.inject({ method: 'POST', url: SYNC_ROUTES.objectPack, payload: { objects: [] } });
    expect(bad.statusCode).toBe(400);
  });

  it('appends the gzip variant of each object to its pack frame when the request asks for gzip', async () => {
    primary = await startTestPrimary();
    const text = '{"packages":{"acme/gz":[]}}'.repeat(10);
    await publish(primary, 'p2/acme/gz.json', text);
    const wanted = [sha256Hex(text), sha256Hex('nope')];
    const response = await primary.app.inject({ method: 'POST', url: SYNC_ROUTES.objectPack, payload: { objects: wanted, gzip: true } });
    const data = response.rawPayload;
    const headLength = data.readUInt32BE(0);
    const header = packFrameHeaderSchema.parse(JSON.parse(data.subarray(4, 4 + headLength).toString()));
    const bodyEnd = 4 + headLength + header.length;
    // The header's exact bytes (key order included) are the wire format mirrors of any version parse.
    expect(data.subarray(4, 4 + headLength).toString()).toBe(
      `{"sha256":"${wanted[0]}","length":${header.length},"encoding":"br","gzipLength":${header.gzipLength}}`,
    );
    expect(brotliDecompressSync(data.subarray(4 + headLength, bodyEnd)).toString()).toBe(text);
    expect(gunzipSync(data.subarray(bodyEnd, bodyEnd + (header.gzipLength ?? 0))).toString()).toBe(text);
    const rest = data.subarray(bodyEnd + (header.gzipLength ?? 0));
    expect(rest.subarray(4).toString()).toBe(`{"sha256":"${wanted[1]}","length":0,"encoding":"identity","missing":true}`);
    expect(rest.length).toBe(4 + rest.readUInt32BE(0));
  });

  it('stores the objects of a large submit without brotli until the backfill after its commit; a pack then carries the gzip variant as the body', async () => {
    primary = await startTestPrimary();
    const textOf = (i: number): string => `{"packages":{"acme/w${i}":[]}}`.repeat(20);
    const changes = Array.from({ length: DEFER_BROTLI_FROM_PATHS }, (_, i) => ({
      path: `p2/acme/w${i}.json`,
      content: Buffer.from(textOf(i)),
    }));
    const text = textOf(0);
    const sha = sha256Hex(text);
    // With the backfill stopped, what the put itself left is visible: raw and gzip, no brotli.
    await primary.core.brotliBackfill.close();
    await primary.core.publisher.submit(changes, 'watch');
    expect(await variantsOf(primary.core.publisher.store, sha)).toEqual({ gzipSize: expect.any(Number) as number });
    const single = await primary.app.inject({ url: `${SYNC_ROUTES.objects}/${sha}`, headers: { 'accept-encoding': 'gzip, br' } });
    expect(single.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(single.rawPayload).toString()).toBe(text);
    const response = await primary.app.inject({ method: 'POST', url: SYNC_ROUTES.objectPack, payload: { objects: [sha], gzip: true } });
    const [frame] = await framesOf(response.rawPayload, [sha]);
    expect(frame?.header).toEqual({ sha256: sha, length: frame?.bytes.length, encoding: 'gzip' });
    expect(frame?.gzip).toBeUndefined();
    expect(gunzipSync(frame?.bytes ?? Buffer.alloc(0)).toString()).toBe(text);
    // A small submit (an edit, a publish) stores its brotli variant at once, whatever its source.
    const edit = '{"packages":{"acme/edit":[]}}'.repeat(20);
    await primary.core.publisher.submit([{ path: 'p2/acme/edit.json', content: Buffer.from(edit) }], 'watch');
    expect((await variantsOf(primary.core.publisher.store, sha256Hex(edit))).brSize).toBeGreaterThan(0);
  });

  it('makes the brotli variants of a large submit after its commit', async () => {
    primary = await startTestPrimary();
    const textOf = (i: number): string => `{"packages":{"acme/l${i}":[]}}`.repeat(20);
    const changes = Array.from({ length: DEFER_BROTLI_FROM_PATHS }, (_, i) => ({
      path: `p2/acme/l${i}.json`,
      content: Buffer.from(textOf(i)),
    }));
    await primary.core.publisher.submit(changes, 'watch');
    await primary.core.brotliBackfill.idle();
    for (const i of [0, DEFER_BROTLI_FROM_PATHS - 1]) {
      const br = await primary.app.inject({ url: `${SYNC_ROUTES.objects}/${sha256Hex(textOf(i))}`, headers: { 'accept-encoding': 'br' } });
      expect(br.headers['content-encoding']).toBe('br');
      expect(brotliDecompressSync(br.rawPayload).toString()).toBe(textOf(i));
    }
  });

  it('serves an object that keeps no compressed variant as identity, alone and in a pack', async () => {
    primary = await startTestPrimary();
    const tiny = '{"packages":{}}';
    await publish(primary, 'p2/acme/tiny.json', tiny);
    const sha = sha256Hex(tiny);
    for (const acceptEncoding of ['gzip, br', 'gzip', 'br']) {
      const single = await primary.app.inject({ url: `${SYNC_ROUTES.objects}/${sha}`, headers: { 'accept-encoding': acceptEncoding } });
      expect(single.statusCode).toBe(200);
      expect(single.headers['content-encoding']).toBeUndefined();
      expect(single.body).toBe(tiny);
    }
    const response = await primary.app.inject({ method: 'POST', url: SYNC_ROUTES.objectPack, payload: { objects: [sha], gzip: true } });
    const frames = await framesOf(response.rawPayload, [sha]);
    expect(frames).toHaveLength(1);
    expect(frames[0]?.header).toEqual({ sha256: sha, length: tiny.length, encoding: 'identity' });
    expect(frames[0]?.gzip).toBeUndefined();
    expect(frames[0]?.bytes.toString()).toBe(tiny);
    expect(frames[0]?.consumed).toBe(response.rawPayload.length);
  });

  it('serves a signed snapshot of the head manifest, gzipped when accepted', async () => {
    primary = await startTestPrimary();
    await publish(primary, 'p2/acme/b.json', '{"b":2}');
    await publish(primary, 'p2/acme/a.json', '{"a":1}');
    const response = await primary.app.inject({ url: SYNC_ROUTES.snapshot, headers: { 'accept-encoding': 'gzip' } });
    expect(response.headers['content-encoding']).toBe('gzip');
    expect(Number(response.headers['content-length'])).toBe(response.rawPayload.length);
    const body = gunzipSync(response.rawPayload);
    const signed = {
      signature: response.headers[HEADERS.signature] as string,
      statement: response.headers[HEADERS.snapshotStatement] as string,
    };
    const statement = verifySnapshotBody(body, signed, { keys: stateKeys(primary), nowMs: Date.now(), what: 'snapshot' });
    expect(statement).toMatchObject({ seq: 2, length: body.length });
    const snapshot = snapshotSchema.parse(JSON.parse(body.toString()));
    expect(snapshot.seq).toBe(2);
    expect(snapshot.entries.map((e) => e.path)).toEqual(['p2/acme/a.json', 'p2/acme/b.json']);
    // Without gzip: the same bytes, from the snapshot file, with their length.
    const plain = await primary.app.inject({ url: SYNC_ROUTES.snapshot });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.rawPayload.equals(body)).toBe(true);
    expect(Number(plain.headers['content-length'])).toBe(body.length);
  });

  it('serves a snapshot signed within the last second again instead of re-signing, and changes continue from it', async () => {
    primary = await startTestPrimary();
    vi.useFakeTimers({ toFake: ['Date'] });
    await publish(primary, 'p2/acme/a.json', '{"a":1}');
    const first = snapshotSchema.parse((await primary.app.inject({ url: SYNC_ROUTES.snapshot })).json());
    await publish(primary, 'p2/acme/b.json', '{"b":2}');
    const reused = snapshotSchema.parse((await primary.app.inject({ url: SYNC_ROUTES.snapshot })).json());
    expect([first.seq, reused.seq]).toEqual([1, 1]);
    const batch = changesBatchSchema.parse((await primary.app.inject({ url: `${SYNC_ROUTES.changes}?since=${reused.seq}` })).json());
    expect(batch.entries.map((e) => e.path)).toEqual(['p2/acme/b.json']);
    vi.setSystemTime(Date.now() + 1_001);
    expect(snapshotSchema.parse((await primary.app.inject({ url: SYNC_ROUTES.snapshot })).json()).seq).toBe(2);
  });

  it('records acks and lists every mirror with its lag in seqs and ms', async () => {
    let clock = 1_800_000_000_000;
    primary = await startTestPrimary({ now: () => clock });
    await publish(primary, 'p2/acme/a.json', '1');
    const firstCommit = primary.core.publisher.headTime();
    await publish(primary, 'p2/acme/a.json', '2');
    const secrets = new Map<string, string>();
    for (const id of ['m-behind', 'm-current', 'm-ahead']) secrets.set(id, (await primary.mirrorCredentials.issue(id)).secret);
    const ack = (mirrorId: string, seq: number) =>
      primary.app.inject({
        method: 'POST',
        url: SYNC_ROUTES.ack,
        headers: { authorization: `Bearer ${secrets.get(mirrorId) ?? 'none'}` },
        payload: { mirrorId, region: 'eu-west-1', url: `https://${mirrorId}.example`, seq, appliedAt: clock },
      });
    clock = firstCommit + 5_000;
    expect((await ack('m-behind', 0)).statusCode).toBe(204);
    expect((await ack('m-current', primary.core.publisher.headSeq())).statusCode).toBe(204);
    const mirrors = mirrorsResponseSchema.parse((await primary.app.inject({ url: SYNC_ROUTES.mirrors })).json());
    expect(mirrors.seq).toBe(2);
    expect(mirrors.mirrors.map((m) => [m.mirrorId, m.seq, m.lagSeq, m.lagMs, m.connected])).toEqual([
      ['m-behind', 0, 2, 5_000, false],
      ['m-current', 2, 0, 0, false],
    ]);
    expect(primary.registry.recentVisibleMs().map((s) => s.mirrorId)).toEqual(['m-current']);
    expect((await ack('m-bad id', 1)).statusCode).toBe(400);
    expect((await ack('m-ahead', 99)).statusCode).toBe(400);
  });
});

function stateKeys(p: TestPrimary): PublicKeyInfo[] {
  return [{ keyId: p.core.key.keyId, publicKey: p.core.key.publicKey, active: true }];
}
