import type { Bench } from '../lib/bench.js';
import { createKeepAliveAgent } from '../lib/http.js';
import { putPackage } from '../lib/publish.js';
import { figure } from '../lib/report.js';
import { elapsedMs, nowNs, summarizeLatencies } from '../lib/stats.js';

/**
 * Issue 2: publish API throughput on the large primary, `publishClients`
 * closed-loop clients each sending PUTs of distinct new packages until
 * `publishRequests` are done. The large mirror is stopped first so that
 * syncing does not take the primary's CPU; every answer must be a 2xx.
 */
export const publishApiBench: Bench = async (ctx) => {
  await ctx.large.stopMirror();
  const primary = await ctx.large.primary();
  const { publishClients: clients, publishRequests: total } = ctx.options;
  const agent = createKeepAliveAgent(clients);
  const latencies: number[] = [];
  const seqs: number[] = [];
  let next = 0;
  const startNs = nowNs();
  try {
    const client = async (): Promise<void> => {
      for (let index = next++; index < total; index = next++) {
        const packageName = `bench-api/package-${ctx.options.seed}-${index}`;
        const result = await putPackage({
          primaryUrl: primary.url,
          token: primary.publishToken,
          packageName,
          versions: ['1.0.0', `1.1.${index}`],
          agent,
        });
        latencies.push(result.durationMs);
        seqs.push(result.seq);
      }
    };
    await Promise.all(Array.from({ length: clients }, client));
  } finally {
    agent.destroy();
  }
  const wallMs = elapsedMs(startNs);
  const summary = summarizeLatencies(latencies);
  const generations = new Set(seqs).size;
  return {
    title: `publish API throughput, ${clients} concurrent clients`,
    params: { clients, requests: total },
    figures: [
      figure({ metric: `PUT package throughput (${clients} clients)`, unit: 'req/s', metasync: total / (wallMs / 1000) }),
      figure({ metric: 'PUT latency p50', unit: 'ms', metasync: summary.p50Ms }),
      figure({ metric: 'PUT latency p99', unit: 'ms', metasync: summary.p99Ms }),
    ],
    notes: [
      `${total} PUTs of new packages in ${(wallMs / 1000).toFixed(2)} s, all 2xx, committed in ${generations} generation(s); no baseline or target in DESIGN.md`,
    ],
  };
};
