import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { waitFor } from '../../../../test/helpers/wait-for.js';

/** Every rm the retirement makes, when it began and ended; the body's takes a while, as a large unlink can. */
const calls: { path: string; startedMs: number; endedMs?: number }[] = [];
vi.mock('node:fs/promises', async (original) => {
  const actual = await original<typeof import('node:fs/promises')>();
  return {
    ...actual,
    async rm(path: string) {
      const call: (typeof calls)[number] = { path, startedMs: performance.now() };
      calls.push(call);
      if (path.endsWith('.bin')) await new Promise((resolve) => setTimeout(resolve, 200));
      call.endedMs = performance.now();
    },
  };
});
const { gzipPathOf, retireLater } = await import('./snapshot-served.js');

describe('retiring a served snapshot', () => {
  it('removes the body before it starts on the gzip, so a gzip renamed in between finds the body gone', async () => {
    const snapshot = {
      seq: 5,
      time: 1,
      path: join('/nonexistent', 'snapshot-0000000000000005.bin'),
      length: 2,
      sha256: 'cd'.repeat(32),
      statement: 's',
      signature: 'k.s',
    };
    retireLater(snapshot, 0);
    await waitFor(() => calls.length === 2 && calls[1]!.endedMs !== undefined, { timeoutMs: 5_000, what: 'both removals' });
    expect(calls.map((call) => call.path)).toEqual([snapshot.path, gzipPathOf(snapshot)]);
    expect(calls[1]!.startedMs).toBeGreaterThanOrEqual(calls[0]!.endedMs!);
  });
});
