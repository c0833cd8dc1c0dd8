import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  cachedSha,
  cacheLine,
  loadStatCache,
  RACY_WINDOW_NS,
  createStatCacheWriter,
  STAT_CACHE_FILE,
  type FileIdentity,
} from './stat-cache.js';

const sha = 'ab'.repeat(32);
const nowNs = 1_800_000_000_000_000_000n;
const old: FileIdentity = { size: 120, mtimeNs: nowNs - 10n * RACY_WINDOW_NS, ctimeNs: nowNs - 5n * RACY_WINDOW_NS, ino: 42 };

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-stat-cache-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('source stat cache', () => {
  it('vouches for a file only when size, mtime, ctime and inode all match', () => {
    const line = cacheLine(old, sha, nowNs)!;
    expect(cachedSha(line, old)).toBe(sha);
    expect(cachedSha(line, { ...old, size: 121 })).toBeUndefined();
    expect(cachedSha(line, { ...old, mtimeNs: old.mtimeNs + 1n })).toBeUndefined();
    expect(cachedSha(line, { ...old, ctimeNs: old.ctimeNs + 1n })).toBeUndefined();
    expect(cachedSha(line, { ...old, ino: 43 })).toBeUndefined();
  });

  it('records no line for a file changed within the racy window (ctime or mtime)', () => {
    expect(cacheLine({ ...old, ctimeNs: nowNs - RACY_WINDOW_NS + 1n }, sha, nowNs)).toBeUndefined();
    expect(cacheLine({ ...old, mtimeNs: nowNs }, sha, nowNs)).toBeUndefined();
    expect(cacheLine(old, sha, nowNs)).toBeDefined();
  });

  it('round-trips paths with spaces and skips damaged lines', async () => {
    const line = cacheLine(old, sha, nowNs)!;
    const writer = createStatCacheWriter(dir);
    writer.record('p2/acme/with space.json', line);
    await writer.finish();
    expect(await loadStatCache(dir)).toEqual(new Map([['p2/acme/with space.json', line]]));
    await writeFile(join(dir, STAT_CACHE_FILE), `${line} p2/a.json\ngarbage\n1 2 3\n${line.replace(sha, 'zz')} p2/b.json\n`);
    const loaded = await loadStatCache(dir);
    expect(loaded.get('p2/a.json')).toBe(line);
    expect(loaded.has('garbage')).toBe(false);
    expect(cachedSha(loaded.get('p2/b.json')!, old)).toBeUndefined();
  });

  it('streams lines as they come: the last line of a path wins, a forgotten path has none, the old cache stays until finish', async () => {
    const line = cacheLine(old, sha, nowNs)!;
    const newer = cacheLine({ ...old, size: 13 }, sha, nowNs)!;
    await writeFile(join(dir, STAT_CACHE_FILE), `${line} p2/kept-until-finish.json\n`);
    const writer = createStatCacheWriter(dir);
    for (let i = 0; i < 5_000; i++) writer.record(`p2/v/p${i}.json`, line); // several chunks
    writer.record('p2/a.json', line);
    writer.record('p2/a.json', newer);
    writer.record('p2/b.json', line);
    writer.record('p2/b.json', undefined);
    expect((await loadStatCache(dir)).has('p2/kept-until-finish.json')).toBe(true);
    await writer.finish();
    const loaded = await loadStatCache(dir);
    expect(loaded.get('p2/a.json')).toBe(newer);
    expect(loaded.has('p2/b.json')).toBe(false);
    expect(loaded.has('p2/kept-until-finish.json')).toBe(false);
    expect(loaded.size).toBe(5_001);
  });

  it('is empty when no cache was written', async () => {
    expect((await loadStatCache(dir)).size).toBe(0);
  });
});
