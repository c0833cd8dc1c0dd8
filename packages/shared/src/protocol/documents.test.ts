import { describe, expect, it } from 'vitest';
import { sha256Hex } from './content-address.js';
import { changesBatchSchema, MAX_OBJECT_BYTES, pathEntrySchema } from './documents.js';

const entry = (size: number) => ({ path: 'p2/acme/foo.json', sha256: sha256Hex('x'), size, mtime: 1 });

describe('path entry sizes', () => {
  it('takes sizes up to 4 GiB - 1, the compact tables keep in 32 bits, and refuses any beyond, fractional or negative', () => {
    expect(pathEntrySchema.safeParse(entry(MAX_OBJECT_BYTES)).success).toBe(true);
    for (const size of [MAX_OBJECT_BYTES + 1, 2 ** 53, 1.5, -1])
      expect(pathEntrySchema.safeParse(entry(size)).success, String(size)).toBe(false);
    // A batch naming one is refused whole, before any table sees it.
    const batch = (size: number) => ({ kind: 'changes', from: 0, to: 1, head: 1, time: 1, entries: [entry(size)] });
    expect(changesBatchSchema.safeParse(batch(1234)).success).toBe(true);
    expect(changesBatchSchema.safeParse(batch(2 ** 32)).success).toBe(false);
  });
});
