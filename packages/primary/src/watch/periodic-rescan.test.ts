import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createPeriodicRescan, type PeriodicRescan } from './periodic-rescan.js';

let rescan: PeriodicRescan | undefined;
let scans: string[];
let intervals: number[];

function start(rescanMs: number, fallbackScanMs: number, scanMs = 0): PeriodicRescan {
  rescan = createPeriodicRescan({
    rescanMs,
    fallbackScanMs,
    scan: async (reason) => {
      scans.push(reason);
      if (scanMs > 0) await new Promise((resolve) => setTimeout(resolve, scanMs));
    },
    onIntervalChange: (ms) => intervals.push(ms),
  });
  return rescan;
}

beforeEach(() => {
  vi.useFakeTimers();
  scans = [];
  intervals = [];
});

afterEach(() => {
  rescan?.close();
  vi.useRealTimers();
});

describe('periodic rescan of the source tree', () => {
  it('scans every rescanMs, timed from the end of the previous scan', async () => {
    start(1_000, 100, 300);
    await vi.advanceTimersByTimeAsync(999);
    expect(scans).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(scans).toEqual(['periodic']);
    await vi.advanceTimersByTimeAsync(1_299); // 300 ms scan + 1,000 ms
    expect(scans).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(scans).toHaveLength(2);
  });

  it('does not scan with rescanMs 0 until degraded, then scans at the fallback interval', async () => {
    const r = start(0, 200);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(scans).toEqual([]);
    r.degrade();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(scans).toEqual(['fallback', 'fallback', 'fallback', 'fallback', 'fallback']);
    expect(intervals).toEqual([0, 200]);
  });

  it('uses the shorter of the two intervals once degraded, and nothing after close', async () => {
    const r = start(100, 5_000);
    r.degrade();
    expect(intervals).toEqual([100, 100]);
    await vi.advanceTimersByTimeAsync(250);
    expect(scans).toEqual(['fallback', 'fallback']);
    r.close();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(scans).toHaveLength(2);
  });
});
