/**
 * A compact set of paths, each kept as a 64-bit key (two 32-bit hashes of its
 * characters) and numbered densely in insertion order, so a start-up over a
 * million files holds no string per path (the walk's Set and the stat cache's
 * Map took ~1 GB at 1M paths). 8 bytes a path plus a 4-byte slot, at least two slots a path: about 16.
 *
 * Two paths with the same key count as one. At a million paths that happens
 * about once in 10^7 walks (birthday bound over 64 bits, with a seed new to
 * each set so it is never the same pair twice), and each use here is chosen
 * so that it only costs work that a later walk redoes: see
 * startup-reconcile.ts and burst-reconcile.ts.
 */
import { randomInt } from 'node:crypto';
import { capacityFor, grow, mix32 } from '@metasync/shared/tables';

export interface PathKeys {
  /** The path's dense number, or -1. */
  find(path: string): number;
  /** The path's dense number, added when absent. */
  add(path: string): number;
  readonly size: number;
}

function keyLo(path: string, seed: number): number {
  let hash = 0x811c9dc5 ^ seed;
  for (let i = 0; i < path.length; i++) hash = Math.imul(hash ^ path.charCodeAt(i), 0x01000193);
  return mix32(hash);
}

function keyHi(path: string, seed: number): number {
  let hash = 0x9747b28c ^ seed;
  for (let i = 0; i < path.length; i++) {
    hash = Math.imul(hash ^ path.charCodeAt(i), 0x5bd1e995);
    hash ^= hash >>> 15;
  }
  return mix32(hash);
}

export function createPathKeys(expected = 1024, seed = randomInt(2 ** 32 - 1)): PathKeys {
  let his = new Uint32Array(Math.max(16, expected));
  let los = new Uint32Array(his.length);
  let slots = emptySlots(capacityFor(his.length));
  let size = 0;

  /** The slot of (hi, lo), or the empty slot where it would go. */
  function slotOf(hi: number, lo: number): number {
    const mask = slots.length - 1;
    let slot = lo & mask;
    for (;;) {
      const at = slots[slot]!;
      if (at === -1 || (his[at] === hi && los[at] === lo)) return slot;
      slot = (slot + 1) & mask;
    }
  }

  function growKeys(): void {
    his = grow(his, his.length * 2);
    los = grow(los, los.length * 2);
    slots = emptySlots(capacityFor(his.length));
    for (let at = 0; at < size; at++) slots[slotOf(his[at]!, los[at]!)] = at;
  }

  return {
    find(path) {
      return slots[slotOf(keyHi(path, seed), keyLo(path, seed))]!;
    },
    add(path) {
      const hi = keyHi(path, seed);
      const lo = keyLo(path, seed);
      const found = slots[slotOf(hi, lo)]!;
      if (found !== -1) return found;
      if (size === his.length) growKeys();
      his[size] = hi;
      los[size] = lo;
      slots[slotOf(hi, lo)] = size;
      return size++;
    },
    get size() {
      return size;
    },
  };
}

function emptySlots(count: number): Int32Array {
  return new Int32Array(count).fill(-1);
}
