import { describe, expect, it } from 'vitest';
import { idleReleaseDue } from './idle-release.js';

const settings = { intervalMs: 5_000, idleCpuShare: 0.05, minSlackBytes: 32 * 2 ** 20 };
const MB = 2 ** 20;

describe('idle release', () => {
  it('collects when the process is quiet and the heap holds much more than it uses', () => {
    expect(idleReleaseDue({ cpuShare: 0.01, heapTotalBytes: 190 * MB, heapUsedBytes: 45 * MB }, settings)).toBe(true);
  });

  it('never pauses a busy process, however large its heap', () => {
    expect(idleReleaseDue({ cpuShare: 0.9, heapTotalBytes: 190 * MB, heapUsedBytes: 45 * MB }, settings)).toBe(false);
  });

  it('leaves a quiet heap alone when little of it is slack', () => {
    expect(idleReleaseDue({ cpuShare: 0, heapTotalBytes: 60 * MB, heapUsedBytes: 45 * MB }, settings)).toBe(false);
  });
});
