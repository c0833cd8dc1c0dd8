import { describe, expect, it } from 'vitest';
import { generateCorpus, packageVersions, renderCorpusPackage } from './helpers/corpus.js';

describe('corpus generator', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const a = generateCorpus({ packages: 50, seed: 7 });
    const b = generateCorpus({ packages: 50, seed: 7 });
    expect(a).toEqual(b);
    expect(renderCorpusPackage(a.packages[3]!)).toEqual(renderCorpusPackage(b.packages[3]!));
    expect(generateCorpus({ packages: 50, seed: 8 }).packages.map((p) => p.name)).not.toEqual(a.packages.map((p) => p.name));
  });

  it('has a Packagist-like size distribution: most files a few KB, a long tail', () => {
    const corpus = generateCorpus({ packages: 2_000, seed: 1 });
    const sizes = corpus.packages.flatMap((pkg) => renderCorpusPackage(pkg).map((file) => file.content.length)).sort((x, y) => x - y);
    const quantile = (q: number) => sizes[Math.floor(q * (sizes.length - 1))]!;
    expect(quantile(0.5)).toBeGreaterThan(1_000);
    expect(quantile(0.5)).toBeLessThan(8_000);
    expect(quantile(0.99)).toBeGreaterThan(20_000);
    expect(sizes.at(-1)!).toBeGreaterThan(200_000);
    expect(sizes.at(-1)!).toBeLessThan(1_500_000);
  });

  it('gives every package valid, distinct versions with a dist and a source', () => {
    for (const pkg of generateCorpus({ packages: 200, seed: 3 }).packages) {
      const versions = packageVersions(pkg);
      expect(versions).toHaveLength(pkg.tagged + pkg.dev);
      expect(new Set(versions.map((v) => v.version)).size).toBe(versions.length);
      for (const v of versions) expect(v).toMatchObject({ dist: { type: 'zip' }, source: { type: 'git' } });
    }
  });
});
