import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { objectRelPath as relPathOf, sha256Hex } from '@metasync/shared';
import { waitFor } from '../../../test/helpers/wait-for.js';
import { startSyncFixture } from './sync-fixture.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
const setup = () => startSyncFixture(cleanups);
const timeoutMs = 5_000;

describe("a mirror's object files: one per object, decoded for clients that take no gzip", () => {
  it('bootstraps from the snapshot with packs asked without brotli: one file per object until its brotli variant follows', async () => {
    const { primary, mirror, dataDir } = await setup();
    const files: Record<string, string> = {};
    for (let i = 0; i < 150; i++) files[`p2/acme/s${i}.json`] = JSON.stringify({ i, pad: 's'.repeat(300 + i) });
    primary.publish(files);
    primary.publish({ 'p2/acme/last.json': JSON.stringify({ last: 'l'.repeat(300) }) });
    primary.faults.oldestSeq = 2;
    mirror.startSync('http://127.0.0.1:1');
    await waitFor(() => mirror.log.state.seq === 2, { timeoutMs, what: 'snapshot applied' });
    expect(primary.packBrotli.length).toBeGreaterThan(0);
    expect(primary.packBrotli.every((brotli) => !brotli)).toBe(true);
    const sha256 = sha256Hex(files['p2/acme/s7.json'] ?? '');
    // The gzip file alone is the object (no raw file); a client taking no gzip gets its decoding.
    expect(existsSync(join(dataDir, 'objects', relPathOf(sha256)))).toBe(false);
    expect(gunzipSync(await readFile(join(dataDir, 'objects', relPathOf(sha256) + '.gz'))).toString()).toBe(files['p2/acme/s7.json']);
    const identity = await mirror.app.inject({ url: '/p2/acme/s7.json' });
    expect(identity.headers['content-encoding']).toBeUndefined();
    expect(identity.headers['content-length']).toBe(String(files['p2/acme/s7.json']?.length));
    expect(identity.body).toBe(files['p2/acme/s7.json']);
    await waitFor(() => existsSync(join(dataDir, 'objects', relPathOf(sha256) + '.br')), {
      timeoutMs: 20_000,
      what: 'brotli variant made',
    });
  });

  it("takes a catch-up's change batches without brotli too, and a publish's few objects with it", async () => {
    const { primary, mirror } = await setup();
    const files: Record<string, string> = {};
    for (let i = 0; i < 1_200; i++) files[`p2/acme/c${i}.json`] = JSON.stringify({ i, pad: 'c'.repeat(100) });
    primary.publish(files);
    // No snapshot yet (a freshly ingested primary): the new mirror pulls the change batch.
    primary.faults.snapshotSeq = 0;
    mirror.startSync('http://127.0.0.1:1');
    await waitFor(() => mirror.log.state.seq === 1, { timeoutMs, what: 'catch-up applied' });
    expect(primary.signed.snapshot).toHaveLength(0);
    expect(primary.packBrotli.length).toBeGreaterThan(0);
    expect(primary.packBrotli.every((brotli) => !brotli)).toBe(true);
    const asked = primary.packBrotli.length;
    const publish: Record<string, string> = {};
    for (let i = 0; i < 100; i++) publish[`p2/acme/p${i}.json`] = JSON.stringify({ i, pad: 'p'.repeat(100) });
    primary.publish(publish);
    await waitFor(() => mirror.log.state.seq === 2, { timeoutMs, what: 'publish applied' });
    expect(primary.packBrotli.length).toBeGreaterThan(asked);
    expect(primary.packBrotli.slice(asked).every((brotli) => brotli)).toBe(true);
  });

  it('streams identity of an object over 1 MiB through gunzip, and never sends more bytes than its Content-Length', async () => {
    const { primary, mirror, dataDir } = await setup();
    const big = JSON.stringify({
      packages: { 'acme/big': Array.from({ length: 12_000 }, (_, i) => ({ version: `1.0.${i}`, dist: 'd'.repeat(80) })) },
    });
    expect(big.length).toBeGreaterThan(1024 * 1024);
    primary.publish({ 'p2/acme/big.json': big });
    mirror.startSync('http://127.0.0.1:1');
    await waitFor(() => mirror.log.state.seq === 1, { timeoutMs, what: 'seq 1' });
    const url = await mirror.app.listen({ host: '127.0.0.1', port: 0 });
    const whole = await fetch(`${url}/p2/acme/big.json`, { headers: { 'accept-encoding': 'identity' } });
    expect(whole.headers.get('content-encoding')).toBeNull();
    expect(whole.headers.get('content-length')).toBe(String(big.length));
    expect(await whole.text()).toBe(big);
    // The gzip file damaged on disk into the gzip of longer bytes: the answer breaks off, it never runs past its length.
    await writeFile(join(dataDir, 'objects', relPathOf(sha256Hex(big)) + '.gz'), gzipSync(big + ' '.repeat(70_000)));
    const damaged = await fetch(`${url}/p2/acme/big.json`, { headers: { 'accept-encoding': 'identity' } })
      .then(async (response) => (await response.arrayBuffer()).byteLength)
      .catch((err: unknown) => err);
    expect(damaged).toBeInstanceOf(Error);
  });
});
