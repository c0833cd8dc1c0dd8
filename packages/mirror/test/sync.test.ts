import { readFile, writeFile } from 'node:fs/promises';
import { brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateSigningKeyPem, objectRelPath as relPathOf, sha256Hex, signingKeyFromPem } from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { openObjectStore } from '@metasync/store';
import { waitFor } from '../../../test/helpers/wait-for.js';
import { openMirror } from '../src/mirror.js';
import { startFakePrimary } from './fake-primary.js';
import { startSyncFixture } from './sync-fixture.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** What each wait here allows unless it says otherwise (waitFor's own default is 10 s). */
const timeoutMs = 5_000;

const setup = (extra: string[] = [], options: { useEvents?: boolean } = {}) => startSyncFixture(cleanups, extra, options);

describe('mirror sync against a protocol-level primary', () => {
  it('bootstraps, then makes each publish visible, deletions included', async () => {
    const primary = await startFakePrimary();
    primary.publish({ 'packages.json': '{"packages":[]}', 'p2/acme/foo.json': '{"v":1}' });
    await primary.close();
    const { primary: live, mirror } = await setup();
    live.publish({ 'packages.json': '{"packages":[],"x":1}', 'p2/acme/foo.json': '{"v":1}' });
    mirror.startSync('http://127.0.0.1:1');
    await waitFor(() => mirror.log.state.seq === 1, { timeoutMs, what: 'seq 1' });
    const first = await mirror.app.inject({ url: '/p2/acme/foo.json', headers: { 'accept-encoding': 'gzip' } });
    expect(first.statusCode).toBe(200);
    expect(first.headers.etag).toBe(`"${sha256Hex('{"v":1}')}"`);
    const publishedAt = Date.now();
    live.publish({ 'p2/acme/bar.json': '{"v":2}' }, ['p2/acme/foo.json']);
    await waitFor(() => mirror.log.state.seq === 2, { timeoutMs: 1_000, what: 'seq 2' });
    expect(Date.now() - publishedAt).toBeLessThan(1_000);
    expect((await mirror.app.inject({ url: '/p2/acme/bar.json' })).body).toBe('{"v":2}');
    const gone = await mirror.app.inject({ url: '/p2/acme/foo.json' });
    expect(gone.statusCode).toBe(404);
    expect(gone.headers['cache-control']).toBe('no-store');
    await waitFor(() => live.acks.some((a) => (a as { seq: number }).seq === 2), { timeoutMs, what: 'ack of seq 2' });
  });

  it('refuses a forged batch, keeps serving its generation, and converges once batches verify', async () => {
    const { primary, mirror } = await setup();
    primary.publish({ 'p2/acme/foo.json': '{"v":1}' });
    mirror.startSync('http://127.0.0.1:1');
    await waitFor(() => mirror.log.state.seq === 1, { timeoutMs, what: 'seq 1' });
    primary.faults.signWith = signingKeyFromPem(generateSigningKeyPem());
    primary.publish({ 'p2/acme/foo.json': '{"v":"forged"}' });
    await waitFor(() => mirror.status.lastError === 'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY', { timeoutMs, what: 'refusal' });
    expect(mirror.log.state.seq).toBe(1);
    expect((await mirror.app.inject({ url: '/p2/acme/foo.json' })).body).toBe('{"v":1}');
    delete primary.faults.signWith;
    await waitFor(() => mirror.log.state.seq === 2, { timeoutMs, what: 'convergence' });
  });

  it('refuses a snapshot whose body is not the one its signed statement names, applies nothing, and converges once it is', async () => {
    const { primary, mirror } = await setup();
    primary.publish({ 'p2/acme/a.json': 'a' });
    primary.publish({ 'p2/acme/b.json': 'b' });
    primary.faults.oldestSeq = 2;
    // One path's hash swapped for another's: still a well-formed snapshot, but not the bytes that were stated.
    primary.faults.rewriteSnapshotBody = (body) => Buffer.from(body.toString('utf8').replace('"p2/acme/b.json"', '"p2/acme/c.json"'));
    mirror.startSync('http://127.0.0.1:1');
    await waitFor(() => mirror.status.lastError === 'METASYNC_ERR_SIGNATURE_INVALID', { timeoutMs, what: 'refusal' });
    expect(mirror.log.state.seq).toBe(0);
    delete primary.faults.rewriteSnapshotBody;
    await waitFor(() => mirror.log.state.seq === 2, { timeoutMs, what: 'snapshot applied' });
    expect((await mirror.app.inject({ url: '/p2/acme/b.json' })).body).toBe('b');
  });

  it('refuses a snapshot whose signed statement names another seq than its body', async () => {
    const { primary, mirror } = await setup();
    primary.publish({ 'p2/acme/a.json': 'a' });
    primary.publish({ 'p2/acme/b.json': 'b' });
    primary.faults.oldestSeq = 2;
    primary.faults.statementSeqOffset = 1;
    mirror.startSync('http://127.0.0.1:1');
    await waitFor(() => mirror.status.lastError === 'METASYNC_ERR_SIGNATURE_INVALID', { timeoutMs, what: 'refusal' });
    expect(mirror.log.state.seq).toBe(0);
  });

  it('still takes a snapshot signed over its body, as a primary from before statements sends it', async () => {
    const { primary, mirror } = await setup();
    primary.publish({ 'p2/acme/a.json': 'a' });
    primary.publish({ 'p2/acme/b.json': 'b' });
    primary.faults.oldestSeq = 2;
    primary.faults.snapshotSignedOverBody = true;
    mirror.startSync('http://127.0.0.1:1');
    await waitFor(() => mirror.log.state.seq === 2, { timeoutMs, what: 'snapshot applied' });
    expect(primary.signed.snapshot.length).toBeGreaterThan(0);
    expect(primary.signed.snapshot.every((answer) => answer.statement === undefined)).toBe(true);
  });

  it('refuses a rollback to an older generation', async () => {
    const { primary, mirror } = await setup();
    primary.publish({ 'p2/acme/foo.json': '{"v":1}' });
    primary.publish({ 'p2/acme/foo.json': '{"v":2}' });
    mirror.startSync('http://127.0.0.1:1');
    await waitFor(() => mirror.log.state.seq === 2, { timeoutMs, what: 'seq 2' });
    primary.faults.rewriteBatch = (batch) => ({ ...batch, from: 2, to: 1, head: 3 });
    primary.publish({ 'p2/acme/foo.json': '{"v":3}' });
    await waitFor(() => mirror.status.lastError === 'METASYNC_ERR_SYNC_ROLLBACK', { timeoutMs, what: 'rollback refusal' });
    expect(mirror.log.state.seq).toBe(2);
  });

  it('resyncs from the snapshot when the journal no longer reaches back', async () => {
    const { primary, mirror } = await setup();
    primary.publish({ 'p2/acme/a.json': 'a' });
    primary.publish({ 'p2/acme/b.json': 'b' });
    primary.faults.oldestSeq = 2;
    mirror.startSync('http://127.0.0.1:1');
    await waitFor(() => mirror.log.state.seq === 2, { timeoutMs, what: 'snapshot applied' });
    expect(primary.requests.some((r) => r.startsWith('/sync/v1/snapshot'))).toBe(true);
    expect((await mirror.app.inject({ url: '/p2/acme/a.json' })).body).toBe('a');
  });

  it('converges by polling when push events are lost', async () => {
    const { primary, mirror } = await setup([], { useEvents: false });
    primary.faults.silentEvents = true;
    mirror.startSync('http://127.0.0.1:1');
    primary.publish({ 'p2/acme/a.json': 'a' });
    await waitFor(() => mirror.log.state.seq === 1, { timeoutMs, what: 'poll-driven apply' });
  });

  it('restarts from its data dir into the same generation without refetching', async () => {
    const { primary, mirror, config } = await setup();
    primary.publish({ 'p2/acme/a.json': 'a'.repeat(500), 'packages.json': '{}' });
    mirror.startSync('http://127.0.0.1:1');
    await waitFor(() => mirror.log.state.seq === 1, { timeoutMs, what: 'seq 1' });
    await mirror.close();
    const objectRequests = primary.requests.filter((r) => r.startsWith('/sync/v1/objects/')).length;
    const again = await openMirror(config, createLogger({ name: 'test', level: 'silent' }), { defaultMetrics: false });
    cleanups.push(() => again.close());
    expect(again.log.state.seq).toBe(1);
    expect((await again.app.inject({ url: '/p2/acme/a.json' })).body).toBe('a'.repeat(500));
    again.startSync('http://127.0.0.1:1');
    primary.publish({ 'p2/acme/b.json': 'b' });
    await waitFor(() => again.log.state.seq === 2, { timeoutMs, what: 'seq 2 after restart' });
    expect(primary.requests.filter((r) => r.startsWith('/sync/v1/objects/')).length).toBe(objectRequests + 1);
  });

  it('refetches an object a power loss damaged while the mirror was stopped, and never serves the damaged bytes', async () => {
    const { primary, mirror, config, dataDir } = await setup();
    primary.publish({ 'p2/acme/a.json': 'a'.repeat(500) });
    mirror.startSync('http://127.0.0.1:1');
    await waitFor(() => mirror.log.state.seq === 1, { timeoutMs, what: 'seq 1' });
    await mirror.close();
    // What an apply killed before its sync leaves after a power loss: the object present, right size, garbage bytes.
    const content = JSON.stringify({ packages: { 'acme/b': [{ version: '1.0.0', description: 'b'.repeat(300) }] } });
    const sha256 = sha256Hex(content);
    const leftover = await openObjectStore({ dir: join(dataDir, 'objects') });
    await leftover.put({ raw: Buffer.from(content) });
    await writeFile(leftover.pathOf(sha256, 'gzip'), gzipSync(Buffer.alloc(content.length, '!')));
    primary.publish({ 'p2/acme/b.json': content });

    const again = await openMirror(config, createLogger({ name: 'test', level: 'silent' }), { defaultMetrics: false });
    cleanups.push(() => again.close());
    again.startSync('http://127.0.0.1:1');
    await waitFor(() => again.log.state.seq === 2, { timeoutMs, what: 'seq 2 after restart' });
    expect((await again.app.inject({ url: '/p2/acme/b.json' })).body).toBe(content);
    const gzipped = await again.app.inject({ url: '/p2/acme/b.json', headers: { 'accept-encoding': 'gzip' } });
    expect(gzipped.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gzipped.rawPayload).toString()).toBe(content);
    expect(sha256Hex(gunzipSync(await readFile(leftover.pathOf(sha256, 'gzip'))))).toBe(sha256);
    expect(primary.requests).toContain(`/sync/v1/objects/${sha256}`);
  });

  it('pins the primary keys on first use and warns', async () => {
    const { primary, mirror, dataDir } = await setup();
    primary.publish({ 'p2/acme/a.json': 'a' });
    mirror.startSync('http://127.0.0.1:1');
    await waitFor(() => mirror.log.state.seq === 1, { timeoutMs, what: 'seq 1' });
    const pinned = JSON.parse(await readFile(join(dataDir, 'primary-keys.json'), 'utf8')) as { keys: { keyId: string }[] };
    expect(pinned.keys.map((k) => k.keyId)).toEqual([primary.key.keyId]);
  });

  it('trusts only the key given with --primary-key', async () => {
    const other = signingKeyFromPem(generateSigningKeyPem());
    const { primary, mirror } = await setup(['--primary-key', `${other.keyId}:${other.publicKey}`]);
    primary.publish({ 'p2/acme/a.json': 'a' });
    mirror.startSync('http://127.0.0.1:1');
    await waitFor(() => mirror.status.lastError === 'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY', {
      timeoutMs,
      what: 'refusal of the unpinned key',
    });
    expect(mirror.log.state.seq).toBe(0);
  });

  it('bootstraps many objects through object packs, fetching a corrupt frame again one by one', async () => {
    const { primary, mirror } = await setup();
    const files: Record<string, string> = {};
    for (let i = 0; i < 300; i++) files[`p2/acme/p${i}.json`] = JSON.stringify({ i, pad: 'y'.repeat(i) });
    primary.publish(files);
    primary.faults.corruptPackFrame = 5;
    mirror.startSync('http://127.0.0.1:1');
    await waitFor(() => mirror.log.state.seq === 1, { timeoutMs: 10_000, what: 'seq 1' });
    expect(primary.packRequests.length).toBeGreaterThan(0);
    expect(primary.requests.filter((r) => r.startsWith('/sync/v1/objects/') && r !== '/sync/v1/objects/pack').length).toBeGreaterThan(0);
    for (const i of [0, 5, 6, 299]) {
      expect((await mirror.app.inject({ url: `/p2/acme/p${i}.json` })).body).toBe(files[`p2/acme/p${i}.json`]);
    }
  });

  it('keeps the gzip variants a pack carries only when they gunzip to the object, fetching a wrong one again', async () => {
    const { primary, mirror } = await setup();
    const files: Record<string, string> = {};
    for (let i = 0; i < 300; i++) files[`p2/acme/g${i}.json`] = JSON.stringify({ i, pad: 'z'.repeat(100 + i) });
    primary.publish(files);
    primary.faults.wrongPackGzip = 7;
    mirror.startSync('http://127.0.0.1:1');
    await waitFor(() => mirror.log.state.seq === 1, { timeoutMs: 10_000, what: 'seq 1' });
    for (let i = 0; i < 300; i++) {
      const response = await mirror.app.inject({ url: `/p2/acme/g${i}.json`, headers: { 'accept-encoding': 'gzip' } });
      expect(response.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(response.rawPayload).toString()).toBe(files[`p2/acme/g${i}.json`]);
    }
    expect(primary.requests.filter((r) => r.startsWith('/sync/v1/objects/') && r !== '/sync/v1/objects/pack').length).toBeGreaterThan(0);
  });

  it("keeps a pack frame's gzip body as its gzip variant, then makes the brotli variant itself after the apply", async () => {
    const { primary, mirror, dataDir } = await setup();
    const files: Record<string, string> = {};
    for (let i = 0; i < 200; i++) files[`p2/acme/z${i}.json`] = JSON.stringify({ i, pad: 'q'.repeat(200 + i) });
    primary.publish(files);
    primary.faults.gzipPackBodies = true;
    mirror.startSync('http://127.0.0.1:1');
    await waitFor(() => mirror.log.state.seq === 1, { timeoutMs: 10_000, what: 'seq 1' });
    let keptAsSent = 0;
    for (let i = 0; i < 200; i++) {
      const text = files[`p2/acme/z${i}.json`] ?? '';
      const gzip = await readFile(join(dataDir, 'objects', relPathOf(sha256Hex(text)) + '.gz'));
      expect(gunzipSync(gzip).toString()).toBe(text);
      // The primary's level-1 bytes, kept as they came (the mirror's own would be level 9).
      if (gzip.equals(gzipSync(text, { level: 1 }))) keptAsSent++;
    }
    expect(keptAsSent).toBe(200);
    // Brotli is made by the mirror from the verified bytes after the commit; until then br+gzip clients get gzip.
    await waitFor(
      async () => {
        const response = await mirror.app.inject({ url: '/p2/acme/z199.json', headers: { 'accept-encoding': 'br' } });
        return (
          response.headers['content-encoding'] === 'br' &&
          brotliDecompressSync(response.rawPayload).toString() === files['p2/acme/z199.json']
        );
      },
      { timeoutMs: 20_000, what: 'brotli variant served' },
    );
  });

  it('refuses to follow a primary that went back to an older seq, and says so in its health', async () => {
    const { primary, mirror } = await setup();
    primary.publish({ 'p2/acme/a.json': 'a' });
    primary.publish({ 'p2/acme/a.json': 'a2' });
    mirror.startSync('http://127.0.0.1:1');
    await waitFor(() => mirror.log.state.seq === 2, { timeoutMs, what: 'seq 2' });
    primary.faults.stateSeq = 1;
    primary.faults.changesStatus = 400;
    await waitFor(() => mirror.status.primaryBehindSeq === 1, { timeoutMs, what: 'rollback noticed by the poll' });
    const health = await mirror.app.inject({ url: '/health/fresh' });
    expect(health.statusCode).toBe(503);
    expect(health.body).toMatch(/refusing to roll back/);
    expect((await mirror.app.inject({ url: '/p2/acme/a.json' })).body).toBe('a2');
    expect(mirror.log.state.seq).toBe(2);
  });

  it('stops promptly in the middle of a large apply, keeping its last committed generation', async () => {
    const { primary, mirror, config } = await setup(['--fetch-concurrency', '2']);
    const files: Record<string, string> = {};
    for (let i = 0; i < 1500; i++) files[`p2/acme/q${i}.json`] = JSON.stringify({ i, pad: 'z'.repeat(2000) });
    primary.faults.oldestSeq = 0;
    primary.publish(files);
    mirror.startSync('http://127.0.0.1:1');
    await waitFor(() => primary.requests.some((r) => r.startsWith('/sync/v1/objects')), { timeoutMs, what: 'fetching started' });
    const stopStarted = Date.now();
    await mirror.close();
    expect(Date.now() - stopStarted).toBeLessThan(5_000);
    const again = await openMirror(config, createLogger({ name: 'test', level: 'silent' }), { defaultMetrics: false });
    cleanups.push(() => again.close());
    expect([0, 1]).toContain(again.log.state.seq);
  });
});
