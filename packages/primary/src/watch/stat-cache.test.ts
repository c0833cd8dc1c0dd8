import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cacheLine, loadStatCache, RACY_WINDOW_NS, createStatCacheWriter, STAT_CACHE_FILE, type FileIdentity } from './stat-cache.js';

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
  it('vouches for a file only when size, mtime, ctime and inode all match and the manifest still publishes its sha256', async () => {
    await writeFile(join(dir, STAT_CACHE_FILE), `${cacheLine(old, sha, nowNs)!} p2/a.json\n`);
    const cache = await loadStatCache(dir);
    expect(cache.vouches('p2/a.json', old, sha)).toBe(true);
    expect(cache.vouches('p2/a.json', { ...old, size: 121 }, sha)).toBe(false);
    expect(cache.vouches('p2/a.json', { ...old, mtimeNs: old.mtimeNs + 1n }, sha)).toBe(false);
    expect(cache.vouches('p2/a.json', { ...old, ctimeNs: old.ctimeNs + 1n }, sha)).toBe(false);
    expect(cache.vouches('p2/a.json', { ...old, ino: 43 }, sha)).toBe(false);
    // Published content that is not what was read (the publish API wrote the path since): read again.
    expect(cache.vouches('p2/a.json', old, 'ac'.repeat(32))).toBe(false);
    expect(cache.vouches('p2/a.json', old, undefined)).toBe(false);
    expect(cache.vouches('p2/other.json', old, sha)).toBe(false);
  });

  it('holds 200,000 lines in compact arrays, under 150 bytes a line (a Map of the lines: 261), each found by its path', async () => {
    const line = cacheLine(old, sha, nowNs)!;
    const writer = createStatCacheWriter(dir);
    for (let i = 0; i < 200_000; i++) writer.record(`p2/vendor${i % 997}/package-${i}.json`, line);
    await writer.finish();
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const used = (): number => {
      gc();
      gc();
      const usage = process.memoryUsage();
      return usage.heapUsed + usage.arrayBuffers;
    };
    const before = used();
    const cache = await loadStatCache(dir);
    // Measured 74.5 alone (the arrays grow by doubling); the margin is for what else the worker holds at that moment.
    const perLine = (used() - before) / 200_000;
    expect(perLine, `${perLine.toFixed(1)} bytes a line`).toBeLessThan(150);
    expect(cache.size).toBe(200_000);
    expect(cache.vouches('p2/vendor7/package-7.json', old, sha)).toBe(true);
    expect(cache.vouches('p2/vendor7/package-199999.json', old, sha)).toBe(false);
    expect(cache.has('p2/vendor0/package-199999.json')).toBe(false);
    expect(cache.has(`p2/vendor${199_999 % 997}/package-199999.json`)).toBe(true);
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
    const roundTripped = await loadStatCache(dir);
    expect(roundTripped.size).toBe(1);
    expect(roundTripped.vouches('p2/acme/with space.json', old, sha)).toBe(true);
    await writeFile(join(dir, STAT_CACHE_FILE), `${line} p2/a.json\ngarbage\n1 2 3\n${line.replace(sha, 'zz')} p2/b.json\n`);
    const loaded = await loadStatCache(dir);
    expect(loaded.vouches('p2/a.json', old, sha)).toBe(true);
    expect(loaded.has('garbage')).toBe(false);
    expect(loaded.has('p2/b.json')).toBe(false);
    expect(loaded.size).toBe(1);
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
    expect(loaded.vouches('p2/a.json', { ...old, size: 13 }, sha)).toBe(true);
    expect(loaded.vouches('p2/a.json', old, sha)).toBe(false);
    expect(loaded.has('p2/b.json')).toBe(false);
    expect(loaded.has('p2/kept-until-finish.json')).toBe(false);
    expect(loaded.size).toBe(5_001);
  });

  it('is empty when no cache was written', async () => {
    expect((await loadStatCache(dir)).size).toBe(0);
  });
});
