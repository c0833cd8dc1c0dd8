import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runRsync } from '../../test/helpers/rsync.js';
import { settleDaemons } from '../lib/quiet-cpu.js';
import type { Bench } from '../lib/bench.js';
import { EVENTS_PATH, pollUntilVisible, servedFromMirror, sha256Hex, waitForMirrorSeq } from '../lib/fleet.js';
import { createKeepAliveAgent, subscribeSse } from '../lib/http.js';
import { putPackage } from '../lib/publish.js';
import { figure } from '../lib/report.js';
import { median } from '../lib/stats.js';

/**
 * One changed file in the large corpus. metasync: the file is replaced
 * atomically in the primary's source tree and the clock runs until the mirror
 * answers with the new bytes (watch -> commit -> push -> fetch -> verify ->
 * apply); and a package's p2 file changed through the publish API, from the
 * call until the mirror answers with the new version. rsync: the same file
 * changed in a copy of the tree, then
 * `rsync -a a/ b/` between two full trees, which stats every file.
 */
export const applyOneBench: Bench = async (ctx) => {
  const tree = await ctx.large.corpus();
  const copies = await ctx.large.rsyncCopies();
  const primary = await ctx.large.primary();
  const mirror = await ctx.large.mirror();
  const settled = await settleDaemons(ctx, [primary.daemon.child.pid, mirror.daemon.child.pid]);
  const agent = createKeepAliveAgent(2);
  const heads: { seq: number; receivedNs: bigint }[] = [];
  const events = subscribeSse(`${primary.url}${EVENTS_PATH}`, (event, data, receivedNs) => {
    if (event !== 'head') return;
    heads.push({ seq: (JSON.parse(data) as { seq: number }).seq, receivedNs });
  });
  const visibleMs: number[] = [];
  const announcedMs: number[] = [];
  const rsyncMs: number[] = [];
  const apiVisibleMs: number[] = [];
  const apiPackage = `bench-apply/package-${ctx.options.seed}`;
  const publish = async (version: string): Promise<number> => {
    return (
      await putPackage({
        primaryUrl: primary.url,
        token: primary.publishToken,
        packageName: apiPackage,
        versions: ['1.0.0', version],
        agent,
      })
    ).seq;
  };
  try {
    // The package must exist on the mirror first, or its proxy fallback would answer the first poll.
    await waitForMirrorSeq({ mirrorUrl: mirror.url, seq: await publish('1.0.1'), timeoutMs: 30_000 });
    for (let round = 0; round < ctx.options.applyRounds; round++) {
      const path = tree.p2Paths[(round * 7919 + ctx.options.seed * 104_729) % tree.p2Paths.length];
      if (path === undefined) throw new Error('the corpus has no p2 paths');
      const body = touchJson(await readFile(join(tree.dir, path), 'utf8'), `metasync-${round}-${Date.now()}`);
      const expected = sha256Hex(body);
      const target = join(tree.dir, path);
      await writeFile(`${target}.bench.tmp`, body);
      const startNs = process.hrtime.bigint();
      await rename(`${target}.bench.tmp`, target);
      const visibleNs = await pollUntilVisible({
        url: `${mirror.url}/${path}`,
        isVisible: (response) => servedFromMirror(response, (responseBody) => sha256Hex(responseBody) === expected),
        intervalMs: 1,
        timeoutMs: 30_000,
        agent,
      });
      visibleMs.push(Number(visibleNs - startNs) / 1e6);
      const head = heads.find((candidate) => candidate.receivedNs >= startNs);
      if (head !== undefined) announcedMs.push(Number(head.receivedNs - startNs) / 1e6);

      const rsyncTarget = join(copies.dirA, path);
      await writeFile(`${rsyncTarget}.bench.tmp`, touchJson(await readFile(rsyncTarget, 'utf8'), `rsync-${round}-${Date.now()}`));
      await rename(`${rsyncTarget}.bench.tmp`, rsyncTarget);
      rsyncMs.push((await runRsync({ src: copies.dirA, dst: copies.dirB })).durationMs);

      const version = `2.${round}.0`;
      const apiStartNs = process.hrtime.bigint();
      await publish(version);
      const apiVisibleNs = await pollUntilVisible({
        url: `${mirror.url}/p2/${apiPackage}.json`,
        isVisible: (response) => servedFromMirror(response, (responseBody) => responseBody.includes(`"${version}"`)),
        intervalMs: 1,
        timeoutMs: 30_000,
        agent,
      });
      apiVisibleMs.push(Number(apiVisibleNs - apiStartNs) / 1e6);
    }
  } finally {
    events.close();
    agent.destroy();
  }
  const metasyncMs = median(visibleMs);
  const notes = [
    settled,
    `median of ${ctx.options.applyRounds} rounds; per round (ms): source tree ${visibleMs.map((ms) => ms.toFixed(1)).join(', ')}; publish API ${apiVisibleMs.map((ms) => ms.toFixed(1)).join(', ')}; rsync ${rsyncMs.map((ms) => ms.toFixed(0)).join(', ')}`,
  ];
  if (announcedMs.length > 0) {
    notes.push(
      `of which file replaced -> primary announced the new head (watch + commit): median ${median(announcedMs).toFixed(1)} ms; the rest is the mirror's fetch/verify/apply`,
    );
  }
  return {
    title: `apply one changed file in a ${tree.paths.length}-path corpus`,
    params: { paths: tree.paths.length, rounds: ctx.options.applyRounds },
    figures: [
      figure({
        metric: 'one changed file: replaced at the source -> new bytes on the mirror',
        unit: 'ms',
        metasync: metasyncMs,
        baseline: { name: 'rsync -a of the trees', value: median(rsyncMs) },
        ratioOf: 'baseline/metasync',
        ratioLabel: 'x faster than rsync',
        target: { text: '>= 50x faster than rsync -a', on: 'ratio', atLeast: 50 },
      }),
      figure({
        metric: 'one changed package: publish API call -> new bytes on the mirror',
        unit: 'ms',
        metasync: median(apiVisibleMs),
        baseline: { name: 'rsync -a of the trees', value: median(rsyncMs) },
        ratioOf: 'baseline/metasync',
        ratioLabel: 'x faster than rsync',
        target: { text: '>= 50x faster than rsync -a', on: 'ratio', atLeast: 50 },
      }),
    ],
    notes,
  };
};

/** The same document with one marker field changed: a real content change, still valid JSON. */
export function touchJson(text: string, marker: string): string {
  const document = JSON.parse(text) as Record<string, unknown>;
  document['x-bench-touch'] = marker;
  return JSON.stringify(document);
}
