/**
 * `node --conditions=source --import tsx bench/snapshot-encode.ts [paths]` (default 1,000,000)
 *
 * How long a snapshot holds the primary's event loop, and how much memory it takes, at `paths` paths
 * (packages/primary/src/journal/snapshot-body.ts): a compact manifest signed on another thread reading its frozen tables in place
 * (snapshot-signer.ts, as the primary does), and on this thread with its lines copied from the tables' bytes
 * and with every line built as a string (the ways before), in the same run, with the longest the main
 * thread's event loop was held.
 * Each way runs in a fresh child process with the primary's node flags, so the RSS growth and peak are its own.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { generateSigningKeyPem, signingKeyFromPem } from '@metasync/shared';
import { PRIMARY_NODE_FLAGS } from '@metasync/shared/node-version';
import { createManifest } from '../packages/primary/src/journal/manifest.js';
import { signSnapshotOffThread } from '../packages/primary/src/journal/snapshot-signer.js';
import { signSnapshot } from '../packages/primary/src/journal/snapshots.js';
import { readProcMemory } from '../test/helpers/proc-stats.js';

const paths = Number(process.argv[2] ?? 1_000_000);
const way = process.argv[3];
const MB = 2 ** 20;

if (way === undefined) {
  console.log(`signSnapshot of a ${paths.toLocaleString('en-US')}-path manifest, each way in its own process:`);
  const results: Record<string, { ms: number; loopMaxMs: number; body: number; rssGrowthMb: number; peakGrowthMb: number }> = {};
  for (const each of ['thread', 'copied', 'strings']) {
    const out = execFileSync(
      process.execPath,
      [...process.execArgv, ...PRIMARY_NODE_FLAGS, fileURLToPath(import.meta.url), String(paths), each],
      {
        encoding: 'utf8',
      },
    );
    results[each] = JSON.parse(out) as (typeof results)[string];
    const r = results[each]!;
    console.log(
      `  ${each.padEnd(8)} ${r.ms.toFixed(0).padStart(6)} ms, event loop held up to ${r.loopMaxMs.toFixed(0).padStart(5)} ms  body ${(r.body / MB).toFixed(0)} MiB  RSS +${r.rssGrowthMb.toFixed(0)} MiB, peak +${r.peakGrowthMb.toFixed(0)} MiB`,
    );
  }
  const { copied, strings } = results as Record<'copied' | 'strings', { ms: number }>;
  console.log(`  lines built as strings take ${(strings.ms / copied.ms).toFixed(2)}x the time of copied lines`);
} else {
  const manifest = createManifest(paths);
  for (let i = 0; i < paths; i++) {
    const sha256 = createHash('sha256').update(String(i)).digest('hex');
    manifest.set(`p2/vendor${i % 120_000}/package-${i}.json`, { sha256, size: 1_000 + i, mtime: 1_700_000_000_000 + i, origin: 'watch' });
  }
  const key = signingKeyFromPem(generateSigningKeyPem());
  const before = await readProcMemory(process.pid);
  // The way before: the same sorted view without its byte access, so every line is built as a string.
  const sorted = way === 'copied' ? () => manifest.sorted!() : () => ({ ...manifest.sorted!(), rawAt: undefined, originAt: undefined });
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  // Its timer runs from the next turn of the loop: a call made at once would block it before it started.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const started = performance.now();
  const input = { seq: 1, time: 1_700_000_000_000, key };
  // The snapshot file is written where the system keeps temporary files, and removed after.
  const dir = mkdtempSync(join(tmpdir(), 'metasync-snapshot-encode-'));
  const snapshot =
    way === 'thread'
      ? await signSnapshotOffThread({ manifest, key, head: () => input, dir })
      : await signSnapshot({ ...input, dir, manifest: Object.assign(Object.create(manifest) as typeof manifest, { sorted }) });
  const ms = performance.now() - started;
  rmSync(dir, { recursive: true, force: true });
  // The delay of the timer that could not run while the loop was held is recorded once it runs.
  await new Promise((resolve) => setTimeout(resolve, 50));
  loop.disable();
  const after = await readProcMemory(process.pid);
  process.stdout.write(
    JSON.stringify({
      ms,
      loopMaxMs: loop.max / 1e6,
      body: snapshot.length,
      rssGrowthMb: (after.rssBytes - before.rssBytes) / MB,
      peakGrowthMb: (after.peakRssBytes - Math.max(before.peakRssBytes, before.rssBytes)) / MB,
    }),
  );
}
