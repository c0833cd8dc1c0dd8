import { describe, expect, it } from 'vitest';
import type { Journal } from '../journal/journal.js';
import { MAX_KNOWN_MIRRORS, createMirrorRegistry } from './registry.js';

/** A journal at head 3 with commit times 1000, 2000, 3000. */
const journal = {
  headSeq: () => 3,
  headTime: () => 3000,
  oldestSeq: () => 0,
  timeOf: (seq: number) => (seq >= 1 && seq <= 3 ? seq * 1000 : undefined),
} as unknown as Journal;

const ack = (mirrorId: string, seq: number) => ({ mirrorId, region: 'eu', url: `https://${mirrorId}.example`, seq, appliedAt: 0 });

describe('mirror registry', () => {
  it('measures lag from the oldest unacked generation and publish-to-visible from the acked one', () => {
    const registry = createMirrorRegistry({ journal, isConnected: (id) => id === 'a' });
    expect(registry.ack(ack('a', 1), 1_250)).toEqual({ visibleMs: 250 });
    expect(registry.ack(ack('a', 1), 1_400)).toEqual({ visibleMs: undefined });
    registry.ack(ack('b', 3), 3_050);
    const listed = registry.list(5_000);
    expect(listed.mirrors.map((m) => [m.mirrorId, m.lagSeq, m.lagMs, m.connected])).toEqual([
      ['a', 2, 3_000, true],
      ['b', 0, 0, false],
    ]);
    expect(registry.recentVisibleMs().map((s) => s.latencyMs)).toEqual([250, 50]);
  });

  it('forgets the least recently seen mirror beyond the bound', () => {
    const registry = createMirrorRegistry({ journal, isConnected: () => false });
    registry.seen('first', 1);
    for (let i = 0; i < MAX_KNOWN_MIRRORS; i++) registry.seen(`m${i}`, 2 + i);
    const ids = registry.list(0).mirrors.map((m) => m.mirrorId);
    expect(ids).toHaveLength(MAX_KNOWN_MIRRORS);
    expect(ids).not.toContain('first');
  });
});
