import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Bench } from '../lib/bench.js';
import { PROXIED_HEADER, sha256Hex } from '../lib/fleet.js';
import { createKeepAliveAgent, httpRequest } from '../lib/http.js';
import { figure } from '../lib/report.js';

const SAMPLE_PATHS = 50;

/**
 * A mirror started with an empty data dir until it serves the primary's head,
 * against `rsync -a` copying the same tree into an empty directory. Then a
 * sample of paths is read back from the mirror: same bytes as the source, and
 * served from its own store (not proxied), or the figure means nothing.
 */
export const bootstrapBench: Bench = async (ctx) => {
  const tree = await ctx.large.corpus();
  const copies = await ctx.large.rsyncCopies();
  const mirror = await ctx.large.mirror();
  const agent = createKeepAliveAgent(4);
  let proxied = 0;
  try {
    const step = Math.max(1, Math.floor(tree.paths.length / SAMPLE_PATHS));
    for (let index = 0; index < tree.paths.length; index += step) {
      const path = tree.paths[index];
      if (path === undefined) break;
      const response = await httpRequest(`${mirror.url}/${path}`, { agent });
      const expected = sha256Hex(await readFile(join(tree.dir, path)));
      if (response.status !== 200 || sha256Hex(response.body) !== expected) {
        throw new Error(
          `mirror ${mirror.url}/${path}: expected 200 with sha256 ${expected}, got ${response.status} with ${sha256Hex(response.body)}`,
        );
      }
      if (response.headers[PROXIED_HEADER] !== undefined) proxied++;
    }
  } finally {
    agent.destroy();
  }
  const paths = tree.paths.length;
  return {
    title: `cold bootstrap of ${paths} paths`,
    params: { paths, corpusMb: Number((tree.bytes / 1e6).toFixed(1)) },
    figures: [
      figure({
        metric: 'cold bootstrap (spawn -> serving head)',
        unit: 's',
        metasync: mirror.bootstrapMs / 1000,
        baseline: { name: 'rsync -a cold copy', value: copies.coldCopyMs / 1000 },
        ratioOf: 'metasync/baseline',
        ratioLabel: 'x rsync time',
        target: { text: '<= rsync -a cold copy', on: 'ratio', atMost: 1 },
      }),
      figure({
        metric: `of ${SAMPLE_PATHS} sampled paths, answered by proxy fallback after bootstrap`,
        unit: 'paths',
        metasync: proxied,
        target: { text: '0', on: 'value', atMost: 0 },
      }),
    ],
    notes: [
      `CPU time of the mirror process until then (user + system): ${(mirror.bootstrapCpuMs / 1000).toFixed(1)} s (steadier than wall time on a loaded machine)`,
      `second rsync cold copy sample: ${(copies.secondColdCopyMs / 1000).toFixed(2)} s; sources in page cache for both`,
      `${SAMPLE_PATHS} sampled paths read back from the mirror with the source's bytes`,
    ],
  };
};
