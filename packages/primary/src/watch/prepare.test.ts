import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { sha256Hex } from '@metasync/shared';
import { openObjectStore } from '@metasync/store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storedContentFor } from '../dists/dist-mirrors.js';
import { createPreparePool } from './prepare-pool.js';
import { prepareSourceFile, type PrepareSettings } from './prepare.js';

let base: string;
let settings: PrepareSettings;

beforeEach(async () => {
  base = await realpath(await mkdtemp(join(tmpdir(), 'metasync-prepare-')));
  await mkdir(join(base, 'source', 'p2', 'acme'), { recursive: true });
  settings = { rootReal: join(base, 'source'), maxFileBytes: 1024 * 1024, storeDir: join(base, 'objects') };
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

const p2 = (name: string) =>
  JSON.stringify({ packages: { [name]: [{ name, version: '1.0.0', dist: { type: 'zip', url: 'https://x/a.zip', reference: 'abc' } }] } });

describe('prepareSourceFile', () => {
  it('hashes and gzips what will be stored, and says whether the store holds it yet', async () => {
    const text = p2('acme/foo').padEnd(400, ' ');
    await writeFile(join(base, 'source', 'p2', 'acme', 'foo.json'), text);
    const store = await openObjectStore({ dir: join(base, 'objects') });
    const first = await prepareSourceFile(settings, 'p2/acme/foo.json');
    if (first.kind !== 'file') throw new Error(`expected a file, got ${first.kind}`);
    expect(first.stored.sha256).toBe(sha256Hex(Buffer.from(text)));
    expect(gunzipSync(first.stored.gzip!).toString()).toBe(text);
    expect(first.stored.absent).toBe(true);
    await store.put({ raw: first.stored.content, sha256: first.stored.sha256, gzip: first.stored.gzip, knownClean: true });
    expect(await store.read(first.stored.sha256)).toEqual(Buffer.from(text));
    const again = await prepareSourceFile(settings, 'p2/acme/foo.json');
    expect(again.kind === 'file' && again.stored.absent).toBe(false);
  });

  it('refuses a p2 file holding another package, and reports JSON that does not parse yet', async () => {
    await writeFile(join(base, 'source', 'p2', 'acme', 'foo.json'), p2('evil/other'));
    await writeFile(join(base, 'source', 'p2', 'acme', 'half.json'), '{"packages":');
    expect(await prepareSourceFile(settings, 'p2/acme/foo.json')).toEqual({
      kind: 'refused',
      reason: 'p2 file for acme/foo holds ["evil/other"]',
    });
    expect(await prepareSourceFile(settings, 'p2/acme/half.json')).toEqual({ kind: 'not-json' });
    expect(await prepareSourceFile(settings, 'p2/acme/none.json')).toEqual({ kind: 'missing' });
  });

  it('adds the dist mirrors before hashing, as the publisher stores it', async () => {
    const text = p2('acme/foo');
    await writeFile(join(base, 'source', 'p2', 'acme', 'foo.json'), text);
    const distsUrl = 'https://mirrors.example';
    const prepared = await prepareSourceFile({ ...settings, distsUrl }, 'p2/acme/foo.json');
    const stored = storedContentFor('p2/acme/foo.json', Buffer.from(text), distsUrl);
    expect(stored.toString()).toContain('mirrors.example');
    expect(prepared.kind === 'file' && prepared.stored.sha256).toBe(sha256Hex(stored));
  });
});

describe('prepare threads', () => {
  it('give the same answer as the main thread, the bytes as Buffers', async () => {
    await writeFile(join(base, 'source', 'p2', 'acme', 'foo.json'), p2('acme/foo'));
    await writeFile(join(base, 'source', 'p2', 'acme', 'half.json'), '{"packages":');
    const pool = createPreparePool(settings, 1);
    try {
      for (const path of ['p2/acme/foo.json', 'p2/acme/half.json', 'p2/acme/none.json']) {
        const inThread = await pool.prepare(path);
        expect(inThread).toEqual(await prepareSourceFile(settings, path));
        if (inThread.kind === 'file') expect(Buffer.isBuffer(inThread.stored.content)).toBe(true);
      }
    } finally {
      await pool.close();
    }
  });
});
