/**
 * A bootstrap/resync progress bar for an operator watching a terminal (main.ts
 * creates it only when stderr is a TTY; logs and metrics carry the same figures otherwise).
 */
import { SingleBar } from 'cli-progress';
import type { UpstreamProgress } from './status.js';

export function createProgressBar(stream: NodeJS.WriteStream): { update(progress: UpstreamProgress): void; stop(): void } {
  const bar = new SingleBar({
    stream,
    format: 'upstream {bar} {value}/{total} p2 files | {rate} files/s | {failed} failed | eta {eta_formatted}',
    hideCursor: true,
  });
  let started = false;
  return {
    update(progress) {
      const seconds = Math.max(0.001, (Date.now() - progress.startedMs) / 1000);
      const payload = { failed: progress.failed, rate: Math.round(progress.done / seconds) };
      if (!started && progress.done >= progress.total) return;
      if (!started) {
        bar.start(progress.total, progress.done, payload);
        started = true;
      }
      bar.setTotal(progress.total);
      bar.update(progress.done, payload);
      if (progress.done >= progress.total) {
        bar.stop();
        started = false;
      }
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}
