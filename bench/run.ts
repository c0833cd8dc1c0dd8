/**
 * `pnpm bench [-- options]`: runs the benchmarks of DESIGN.md's "Targets" table
 * on loopback, prints one table (metasync figure, the same run's baseline, the
 * ratio, whether the target is met) and writes the JSON under bench/results/.
 * Benchmarks report; they do not pass or fail. The exit code is non-zero only
 * when a bench could not produce its figures.
 */
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readMachineInfo } from '../test/helpers/proc-stats.js';
import { applyOneBench } from './benches/apply-one.js';
import { bootstrapBench } from './benches/bootstrap.js';
import { ingestBench } from './benches/ingest.js';
import { mirrorRssBench } from './benches/mirror-rss.js';
import { publishApiBench } from './benches/publish-api.js';
import { publishVisibleBench } from './benches/publish-visible.js';
import { restartBench } from './benches/restart.js';
import { serveBench } from './benches/serve.js';
import { distsBench } from './benches/dists.js';
import type { Bench } from './lib/bench.js';
import { createLargeFixture, type BenchContext } from './lib/context.js';
import { planCpus } from './lib/cpu.js';
import { BENCH_IDS, parseBenchOptions, type BenchId } from './lib/options.js';
import { renderTable, writeReport, type BenchReport, type BenchResult } from './lib/report.js';
import { elapsedMs, nowNs } from './lib/stats.js';

const BENCHES: Record<BenchId, Bench> = {
  ingest: ingestBench,
  restart: restartBench,
  bootstrap: bootstrapBench,
  'apply-one': applyOneBench,
  serve: serveBench,
  'mirror-rss': mirrorRssBench,
  'publish-api': publishApiBench,
  'publish-visible': publishVisibleBench,
  dists: distsBench,
};

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

async function main(): Promise<number> {
  const parsed = parseBenchOptions(process.argv.slice(2), process.env);
  if (parsed.help) {
    console.log(parsed.text);
    return 0;
  }
  const { options } = parsed;
  const startedAt = new Date();
  const machine = readMachineInfo();
  const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), 'metasync-bench-')));
  if (options.workDir !== undefined) {
    // A reused directory would hold a warm primary and mirror: bootstrap and ingest would not be cold.
    await mkdir(workDir, { recursive: true });
    if (!options.reuseFleet && (await readdir(workDir)).length > 0) throw new Error(`--work-dir ${workDir} must be empty (or absent)`);
  }
  const stops: (() => Promise<void>)[] = [];
  const base: Omit<BenchContext, 'large'> = {
    options,
    workDir,
    cpu: planCpus(options.pin),
    log: (message) =>
      process.stderr.write(
        `[bench ${new Date().toISOString().slice(11, 19)} rss ${(process.memoryUsage.rss() / 2 ** 20).toFixed(0)}M] ${message}\n`,
      ),
    defer: (stop) => stops.push(stop),
    observations: {},
  };
  const ctx: BenchContext = { ...base, large: createLargeFixture(base) };
  const results: BenchResult[] = [];
  const out = options.out ?? join(REPO_ROOT, 'bench', 'results', `${startedAt.toISOString().replaceAll(':', '-').slice(0, 19)}.json`);
  const reportOf = (): BenchReport => ({
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    command: ['pnpm bench --', ...process.argv.slice(2).filter((arg) => arg !== '--')].join(' '),
    machine,
    options: { ...options, cpuPlan: ctx.cpu },
    results,
  });
  // The benches that finished are kept: a million-path run is an hour, and stopping it during one bench
  // used to lose every figure of the others.
  const stopOnSignal = (): void => {
    ctx.log(`interrupted: stopping what the bench started; the ${results.length} finished bench(es) go to ${out}`);
    void writeReport(out, reportOf())
      .catch((err: unknown) => ctx.log(`results not written: ${String(err)}`))
      .then(() => runStops(stops))
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  try {
    for (const id of BENCH_IDS) {
      if (!options.only.includes(id)) continue;
      ctx.log(`bench ${id}: start`);
      const startNs = nowNs();
      const loadAtStart = loadAverage1m();
      try {
        const outcome = await BENCHES[id](ctx);
        results.push({
          id,
          status: 'ok',
          durationMs: elapsedMs(startNs),
          loadAverage1m: { start: loadAtStart, end: loadAverage1m() },
          ...outcome,
        });
      } catch (err) {
        const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
        ctx.log(`bench ${id}: failed: ${message}`);
        results.push({
          id,
          title: id,
          status: 'failed',
          durationMs: elapsedMs(startNs),
          loadAverage1m: { start: loadAtStart, end: loadAverage1m() },
          figures: [],
          notes: [],
          params: {},
          error: err instanceof Error ? err.message : String(err),
        });
      }
      ctx.log(`bench ${id}: done in ${(elapsedMs(startNs) / 1000).toFixed(1)} s`);
    }
  } finally {
    await runStops(stops);
  }
  const report = reportOf();
  await writeReport(out, report);
  console.log(renderTable(report));
  console.log(`\nresults: ${out}${options.keep || options.workDir !== undefined ? `\nscratch kept: ${workDir}` : ''}`);
  if (!options.keep && options.workDir === undefined) {
    ctx.log(`removing ${workDir}`);
    await rm(workDir, { recursive: true, force: true });
  }
  return results.some((result) => result.status === 'failed') ? 1 : 0;
}

function loadAverage1m(): number {
  return Number((loadavg()[0] ?? 0).toFixed(2));
}

/** Last started, first stopped; every stop runs even when one fails. */
async function runStops(stops: (() => Promise<void>)[]): Promise<void> {
  for (const stop of stops.splice(0).reverse()) {
    try {
      await stop();
    } catch (err) {
      process.stderr.write(`[bench] stop failed: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
}

process.exitCode = await main();
