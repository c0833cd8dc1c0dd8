import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cachedCorpusTree } from '../bench/lib/corpus.js';

let cacheDir: string;
beforeEach(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'metasync-corpus-cache-'));
});
afterEach(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

describe('bench corpus cache (--corpus-cache)', () => {
  it('writes the corpus once, reuses it byte for byte, and redoes a write that was cut off before its marker', async () => {
    const first = await cachedCorpusTree({ cacheDir, paths: 40, seed: 3 });
    expect(first.reused).toBe(false);
    expect(first.paths.length).toBeGreaterThanOrEqual(40); // packages are taken whole: a ~dev file may add one
    const somePath = first.p2Paths[0]!;
    const bytes = await readFile(join(first.dir, somePath));

    const second = await cachedCorpusTree({ cacheDir, paths: 40, seed: 3 });
    expect(second.reused).toBe(true);
    expect(second.paths).toEqual(first.paths);
    expect(second.bytes).toBe(first.bytes);

    // A run cut off mid-write leaves no marker: the tree is written again, and a stray file goes with it.
    await unlink(join(cacheDir, '40-3', 'corpus.json'));
    await writeFile(join(first.dir, 'p2', 'stray.json'), '{}');
    const third = await cachedCorpusTree({ cacheDir, paths: 40, seed: 3 });
    expect(third.reused).toBe(false);
    expect(third.paths).toEqual(first.paths);
    expect(await readFile(join(third.dir, somePath))).toEqual(bytes);
    await expect(readFile(join(third.dir, 'p2', 'stray.json'))).rejects.toMatchObject({ code: 'ENOENT' });

    // Another size or seed is another corpus.
    expect((await cachedCorpusTree({ cacheDir, paths: 40, seed: 4 })).reused).toBe(false);
  });
});
