/**
 * `node --conditions=source --import tsx bench/fsync-beside.ts [DIR]` (DIR: a directory on the file system to
 * judge, default the OS temp dir)
 *
 * How long a small file's datasync waits while a large file is written and synced beside it: the journal's
 * append beside a million-path snapshot file (about 156 MB). An appender writes 600 B and datasyncs every
 * 50 ms; a 156 MiB file is written through writeFileAtomic (synced every SYNC_STEP_BYTES) and, for
 * comparison, written the same way with one sync at the end. Prints the appender's latencies alone and beside each.
 */
import { open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '@metasync/shared/fs';
import { percentile } from './lib/stats.js';

const dir = process.argv[2] ?? tmpdir();
const BIG_BYTES = 156 * 2 ** 20;

async function appenderBeside(work: () => Promise<void>): Promise<{ alone: number[]; beside: number[]; workMs: number }> {
  const path = join(dir, `fsync-beside-journal-${process.pid}`);
  const journal = await open(path, 'w');
  const latencies: number[] = [];
  let stop = false;
  const appending = (async () => {
    const record = Buffer.alloc(600, 7);
    // Bounded: the work below takes seconds, and the loop stops with it.
    for (let i = 0; i < 10_000 && !stop; i++) {
      const started = performance.now();
      await journal.write(record);
      await journal.datasync();
      latencies.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const alone = latencies.splice(0);
  const started = performance.now();
  await work();
  const workMs = performance.now() - started;
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  stop = true;
  await appending;
  await journal.close();
  await rm(path);
  return { alone, beside: latencies, workMs };
}

const big = Buffer.alloc(BIG_BYTES, 1);
const target = join(dir, `fsync-beside-big-${process.pid}`);
const ways: Record<string, () => Promise<void>> = {
  'writeFileAtomic, synced in steps': () => writeFileAtomic(target, [big]),
  'one sync at the end': async () => {
    const handle = await open(target, 'w');
    await handle.writeFile(big);
    await handle.sync();
    await handle.close();
  },
};
const line = (values: number[]): string => `p50 ${percentile(values, 50).toFixed(1)} ms, max ${Math.max(...values).toFixed(1)} ms`;
for (const [name, work] of Object.entries(ways)) {
  const { alone, beside, workMs } = await appenderBeside(work);
  console.log(`${name}: 156 MiB in ${workMs.toFixed(0)} ms; a small datasync alone ${line(alone)}, beside it ${line(beside)}`);
  await rm(target, { force: true });
}
