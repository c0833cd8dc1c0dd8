import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BENCH_IDS } from '../bench/lib/options.js';
import type { BenchReport } from '../bench/lib/report.js';
import { REPO_ROOT } from './helpers/daemon.js';

/**
 * A harness check, not a performance assertion: `pnpm bench` at a tiny size
 * runs every bench against the real daemons and its real baselines (nginx,
 * wrk, rsync) and each produces finite figures. The numbers themselves are
 * meaningless at this size and on a loaded CI box.
 */
const RUN_TIMEOUT_MS = 110_000;

describe('pnpm bench at a tiny size', () => {
  let dir: string;
  let exitCode: number | null;
  let output: string;
  let report: BenchReport;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'metasync-bench-smoke-'));
    const out = join(dir, 'result.json');
    const args = [
      '--conditions=source',
      '--import',
      'tsx',
      'bench/run.ts',
      '--paths',
      '500',
      '--fleet-paths',
      '100',
      '--mirrors',
      '2',
      '--publishes',
      '20',
      '--publish-rate',
      '20',
      '--wrk-seconds',
      '2',
      '--settle-seconds',
      '1',
      '--wrk-warmup-seconds',
      '0',
      '--connections',
      '16',
      '--serve-rounds',
      '1',
      '--publish-clients',
      '4',
      '--publish-requests',
      '60',
      '--apply-rounds',
      '2',
      '--work-dir',
      join(dir, 'work'),
      '--out',
      out,
    ];
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: string[] = [];
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => chunks.push(chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => chunks.push(chunk));
    const timer = setTimeout(() => child.kill('SIGTERM'), RUN_TIMEOUT_MS);
    exitCode = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    clearTimeout(timer);
    output = chunks.join('');
    const text = await readFile(out, 'utf8').catch((err: unknown) => {
      throw new Error(`bench wrote no report (exit ${exitCode}, ${String(err)}): ${output.slice(-3000)}`);
    });
    report = JSON.parse(text) as BenchReport;
  }, RUN_TIMEOUT_MS + 10_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs every bench to completion and exits 0', () => {
    expect(report.results.map((result) => ({ id: result.id, status: result.status, error: result.error }))).toEqual(
      BENCH_IDS.map((id) => ({ id, status: 'ok', error: undefined })),
    );
    expect(exitCode, output.slice(-3000)).toBe(0);
  });

  it('gives every figure a finite metasync value, baseline and ratio (a ratio over a zero baseline is not finite)', () => {
    for (const result of report.results) {
      expect(result.figures.length, result.id).toBeGreaterThan(0);
      for (const item of result.figures) {
        expect(Number.isFinite(item.metasync), `${result.id}: ${item.metric} = ${item.metasync}`).toBe(true);
        if (item.baseline !== undefined) expect(Number.isFinite(item.baseline.value), `${result.id}: ${item.metric} baseline`).toBe(true);
        if (item.ratio !== undefined) expect(Number.isFinite(item.ratio.value), `${result.id}: ${item.metric} ratio`).toBe(true);
      }
    }
  });

  it('runs the real baselines beside metasync in the same run', () => {
    const baselineOf = (id: string): string[] =>
      (report.results.find((result) => result.id === id)?.figures ?? []).flatMap((item) =>
        item.baseline === undefined ? [] : [item.baseline.name],
      );
    expect(baselineOf('serve').join()).toContain('nginx');
    expect(baselineOf('apply-one').join()).toContain('rsync');
    expect(baselineOf('bootstrap').join()).toContain('rsync');
    expect(baselineOf('publish-visible').join()).toContain('rsync');
    expect(baselineOf('ingest').join()).toContain('rsync');
  });

  it('prints the table with the machine figures', () => {
    expect(output).toMatch(/machine: \d+ cores, .+ GiB RAM, node v\d+/);
    expect(output).toContain('| ratio');
    expect(report.machine.cores).toBeGreaterThan(0);
  });
});
