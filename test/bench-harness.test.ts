import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseBenchOptions } from '../bench/lib/options.js';
import { waitForMirrorSeq } from '../bench/lib/fleet.js';
import { gcPausesBetween, readGcPauses } from '../bench/lib/gc.js';
import { readPrometheusValue } from '../bench/lib/http.js';
import { figure } from '../bench/lib/report.js';
import { percentile } from '../bench/lib/stats.js';
import { renderNginxConfig } from './helpers/nginx.js';
import { parseTransferredFiles } from './helpers/rsync.js';
import { parseWrkOutput } from './helpers/wrk.js';

describe('bench figures', () => {
  it('reads a throughput ratio as metasync over baseline and judges the target on it', () => {
    const item = figure({
      metric: 'rps',
      unit: 'req/s',
      metasync: 900,
      baseline: { name: 'nginx', value: 1000 },
      ratioOf: 'metasync/baseline',
      target: { text: '>= 1.0x', on: 'ratio', atLeast: 1 },
    });
    expect(item.ratio?.value).toBeCloseTo(0.9);
    expect(item.target).toEqual({ text: '>= 1.0x', met: false });
  });

  it('reads a speedup as baseline over metasync', () => {
    const item = figure({
      metric: 'apply',
      unit: 'ms',
      metasync: 10,
      baseline: { name: 'rsync', value: 800 },
      ratioOf: 'baseline/metasync',
      target: { text: '>= 50x', on: 'ratio', atLeast: 50 },
    });
    expect(item.ratio?.value).toBe(80);
    expect(item.target?.met).toBe(true);
  });

  it('never counts a missing or non-finite figure as meeting its target', () => {
    expect(
      figure({ metric: 'p99', unit: 'ms', metasync: Number.NaN, target: { text: '<= 250', on: 'value', atMost: 250 } }).target?.met,
    ).toBe(false);
    expect(figure({ metric: 'x', unit: 'ms', metasync: 5, target: { text: '>= 2x', on: 'ratio', atLeast: 2 } }).target?.met).toBe(false);
  });

  it('takes nearest-rank percentiles', () => {
    const samples = Array.from({ length: 100 }, (_, index) => index + 1);
    expect(percentile(samples, 50)).toBe(50);
    expect(percentile(samples, 99)).toBe(99);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('bench tool glue', () => {
  it('parses the machine-readable line the wrk Lua script prints', () => {
    const result = parseWrkOutput(
      'Running 1s test\nWRK_JSON {"requests":2000,"durationUs":2000000,"bytes":4000,"connectErrors":1,"readErrors":0,"writeErrors":0,"statusErrors":3,"timeoutErrors":2,"p50Us":500,"p90Us":900,"p99Us":1500,"maxUs":9000}\n',
    );
    expect(result).toMatchObject({ requestsPerSec: 1000, latencyP50Ms: 0.5, latencyP99Ms: 1.5, statusErrors: 3, socketErrors: 3 });
  });

  it('refuses wrk output without the result line', () => {
    expect(() => parseWrkOutput('unable to connect')).toThrow(/WRK_JSON/);
  });

  it('renders an nginx config serving precompressed siblings with one worker on loopback', () => {
    const config = renderNginxConfig({
      root: '/srv/r',
      prefix: '/tmp/p',
      port: 8089,
      workerProcesses: 1,
      runAsRoot: false,
      maxOpenFiles: 20_000,
    });
    expect(config).toContain('worker_processes 1;');
    expect(config).toContain('gzip_static on;');
    expect(config).toContain('listen 127.0.0.1:8089;');
    expect(config).toContain('open_file_cache max=16000 ');
    expect(config).not.toContain('user root');
  });

  it('reads rsync --stats and unlabelled Prometheus samples', () => {
    expect(parseTransferredFiles('Number of regular files transferred: 1,234\n')).toBe(1234);
    expect(
      readPrometheusValue('# HELP x\nmetasync_mirror_applied_seq_total 9\nmetasync_mirror_applied_seq 42\n', 'metasync_mirror_applied_seq'),
    ).toBe(42);
    expect(readPrometheusValue('other 1\n', 'metasync_mirror_applied_seq')).toBeUndefined();
  });

  it('sums the GC pause histogram over every kind and tells the pauses a run added', () => {
    const exposition = (minorCount: number, majorCount: number, slowMajor: number) =>
      [
        '# HELP nodejs_gc_duration_seconds Garbage collection duration by kind',
        `nodejs_gc_duration_seconds_bucket{le="0.001",kind="minor"} ${minorCount - 1}`,
        `nodejs_gc_duration_seconds_bucket{le="0.01",kind="minor"} ${minorCount}`,
        `nodejs_gc_duration_seconds_bucket{le="0.1",kind="minor"} ${minorCount}`,
        `nodejs_gc_duration_seconds_sum{kind="minor"} ${minorCount * 0.002}`,
        `nodejs_gc_duration_seconds_count{kind="minor"} ${minorCount}`,
        `nodejs_gc_duration_seconds_bucket{le="0.01",kind="major"} ${majorCount - slowMajor}`,
        `nodejs_gc_duration_seconds_bucket{le="0.1",kind="major"} ${majorCount - 1}`,
        `nodejs_gc_duration_seconds_sum{kind="major"} ${majorCount * 0.05}`,
        `nodejs_gc_duration_seconds_count{kind="major"} ${majorCount}`,
        'nodejs_gc_duration_seconds_other 99',
      ].join('\n');
    const before = readGcPauses(exposition(10, 2, 1));
    expect(before).toMatchObject({ count: 12, over10ms: 1, over100ms: 1 });
    expect(before.totalMs).toBeCloseTo(120, 6);
    const run = gcPausesBetween(before, readGcPauses(exposition(110, 6, 3)));
    expect(run.count).toBe(104);
    expect(run.totalMs).toBeCloseTo(400, 6);
    expect(run.over10ms).toBe(2);
    expect(run.over100ms).toBe(0);
  });

  it('reads bench options from flags, then METASYNC_BENCH_* env, and rejects unknown benches', () => {
    const parsed = parseBenchOptions(['--', '--paths', '500', '--only', 'serve'], { METASYNC_BENCH_MIRRORS: '2' });
    expect(parsed.help).toBe(false);
    if (!parsed.help) expect(parsed.options).toMatchObject({ paths: 500, mirrors: 2, only: ['serve'] });
    expect(() => parseBenchOptions(['--only', 'nope'], {})).toThrow(/unknown bench "nope"/);
    expect(() => parseBenchOptions(['--paths', 'ten'], {})).toThrow(/--paths/);
  });

  it('gives the fleet another corpus than the large one and one rsync tree per mirror, unless told', () => {
    const defaults = parseBenchOptions(['--seed', '4', '--mirrors', '3'], {});
    if (!defaults.help) expect(defaults.options).toMatchObject({ fleetSeed: 5, fleetRsyncTrees: 3 });
    const told = parseBenchOptions(['--seed', '4', '--fleet-seed', '4', '--fleet-rsync-trees', '1'], {});
    if (!told.help) expect(told.options).toMatchObject({ fleetSeed: 4, fleetRsyncTrees: 1, mirrors: 5 });
    expect(() => parseBenchOptions(['--mirrors', '2', '--fleet-rsync-trees', '3'], {})).toThrow(/--fleet-rsync-trees: at most/);
  });

  it('restarts a kept fleet only for publish-visible in a named work dir', () => {
    const reuse = parseBenchOptions(['--reuse-fleet', '--work-dir', '/tmp/kept', '--only', 'publish-visible'], {});
    if (!reuse.help) expect(reuse.options).toMatchObject({ reuseFleet: true, workDir: '/tmp/kept' });
    expect(() => parseBenchOptions(['--reuse-fleet', '--only', 'publish-visible'], {})).toThrow(/--reuse-fleet: needs/);
    expect(() => parseBenchOptions(['--reuse-fleet', '--work-dir', '/tmp/kept', '--only', 'publish-visible,bootstrap'], {})).toThrow(
      /--reuse-fleet: needs/,
    );
  });
});

describe('waiting for a mirror', () => {
  it("takes the applied seq from the mirror's log lines without asking its /metrics, and only at the target", async () => {
    // A closed port: any /metrics read would reject, and the metrics fallback only comes after a second.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const logs: Record<string, unknown>[] = [
      { msg: 'generation applied', seq: 3 },
      { msg: 'fetching objects', seq: 9 },
    ];
    setTimeout(() => logs.push({ msg: 'snapshot applied', seq: 7 }), 150);
    const startMs = Date.now();
    const seq = await waitForMirrorSeq({ mirrorUrl: `http://127.0.0.1:${port}`, seq: 5, timeoutMs: 5_000, intervalMs: 10, logs });
    expect(seq).toBe(7);
    expect(Date.now() - startMs).toBeGreaterThanOrEqual(140);
    expect(Date.now() - startMs).toBeLessThan(1_000);
  });
});
