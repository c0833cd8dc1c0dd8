import { sha256Hex } from '@metasync/shared';
import { describe, expect, it } from 'vitest';
import { createGcCandidates } from './gc-candidates.js';
import { shardIndexOf } from './gc-roots.js';

describe('object GC candidates', () => {
  it('keeps each candidate under its shard, counts each once, and allows forgetting while a shard is walked', () => {
    const candidates = createGcCandidates();
    const shas = Array.from({ length: 2_000 }, (_, i) => sha256Hex(`object ${i}`));
    for (const sha256 of shas) candidates.track(sha256, 5);
    candidates.track(shas[0]!, 9);
    expect(candidates.size).toBe(2_000);
    expect(candidates.get(shas[0]!)).toBe(9);
    const shard = shardIndexOf(shas[1]!);
    const ofShard = shas.filter((sha256) => shardIndexOf(sha256) === shard);
    expect([...candidates.ofShard(shard).keys()].sort()).toEqual([...ofShard].sort());
    for (const sha256 of candidates.ofShard(shard).keys()) candidates.forget(sha256);
    expect(candidates.ofShard(shard).size).toBe(0);
    expect(candidates.size).toBe(2_000 - ofShard.length);
    candidates.forget(shas[1]!);
    expect(candidates.size).toBe(2_000 - ofShard.length);
    expect(candidates.has(shas[1]!)).toBe(false);
    expect(candidates.has(shas.find((sha256) => shardIndexOf(sha256) !== shard)!)).toBe(true);
  });
});
