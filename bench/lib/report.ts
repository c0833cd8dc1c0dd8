import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { MachineInfo } from '../../test/helpers/proc-stats.js';

export interface TargetSpec {
  /** As DESIGN.md states it, e.g. 'p99 <= 250 ms'. */
  text: string;
  /** Which number the target bounds: the metasync figure itself or the ratio. */
  on: 'value' | 'ratio';
  atMost?: number;
  atLeast?: number;
}

export interface Figure {
  metric: string;
  unit: string;
  metasync: number;
  baseline?: { name: string; value: number };
  /** `value` read with `label`, e.g. 0.93 "x nginx" or 61 "x faster than rsync". */
  ratio?: { value: number; label: string };
  target?: { text: string; met: boolean };
}

export interface BenchResult {
  id: string;
  title: string;
  status: 'ok' | 'failed';
  durationMs: number;
  figures: Figure[];
  notes: string[];
  params: Record<string, number | string | boolean>;
  /** 1-minute load average before and after: other work on the machine disturbs the figures. */
  loadAverage1m: { start: number; end: number };
  error?: string;
}

export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: MachineInfo;
  options: Record<string, unknown>;
  results: BenchResult[];
}

export interface FigureInput {
  metric: string;
  unit: string;
  metasync: number;
  baseline?: { name: string; value: number };
  /**
   * `metasync/baseline` (throughput vs nginx, time vs rsync cold copy) or
   * `baseline/metasync` (a speedup: how many times faster metasync is).
   */
  ratioOf?: 'metasync/baseline' | 'baseline/metasync';
  ratioLabel?: string;
  target?: TargetSpec;
}

/** Builds a figure: computes the ratio from the same run's baseline and whether the target is met. */
export function figure(input: FigureInput): Figure {
  const result: Figure = { metric: input.metric, unit: input.unit, metasync: input.metasync };
  if (input.baseline !== undefined) result.baseline = input.baseline;
  if (input.baseline !== undefined && input.ratioOf !== undefined) {
    const value = input.ratioOf === 'metasync/baseline' ? input.metasync / input.baseline.value : input.baseline.value / input.metasync;
    result.ratio = { value, label: input.ratioLabel ?? (input.ratioOf === 'metasync/baseline' ? 'x baseline' : 'x faster') };
  }
  if (input.target !== undefined) {
    const measured = input.target.on === 'ratio' ? result.ratio?.value : input.metasync;
    result.target = { text: input.target.text, met: isWithin(measured, input.target) };
  }
  return result;
}

function isWithin(measured: number | undefined, target: TargetSpec): boolean {
  if (measured === undefined || !Number.isFinite(measured)) return false;
  if (target.atMost !== undefined && measured > target.atMost) return false;
  if (target.atLeast !== undefined && measured < target.atLeast) return false;
  return true;
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** A plain-text table: one row per figure, failures and notes under it. */
export function renderTable(report: BenchReport): string {
  const header = ['bench', 'metric', 'metasync', 'baseline (same run)', 'ratio', 'target', 'met'];
  const rows: string[][] = [];
  for (const result of report.results) {
    if (result.status === 'failed') {
      rows.push([result.id, 'FAILED', '-', '-', '-', '-', 'no']);
      continue;
    }
    for (const item of result.figures) {
      rows.push([
        result.id,
        item.metric,
        `${formatNumber(item.metasync)} ${item.unit}`,
        item.baseline === undefined ? '-' : `${formatNumber(item.baseline.value)} ${item.unit} (${item.baseline.name})`,
        item.ratio === undefined ? '-' : `${formatNumber(item.ratio.value)} ${item.ratio.label}`,
        item.target?.text ?? '-',
        item.target === undefined ? '-' : item.target.met ? 'yes' : 'NO',
      ]);
    }
  }
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]): string => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(' | ');
  const rule = widths.map((width) => '-'.repeat(width)).join('-+-');
  const { machine } = report;
  const lines = [
    `machine: ${machine.cores} cores, ${machine.cpuModel}, ${(machine.ramBytes / 2 ** 30).toFixed(1)} GiB RAM, node ${machine.node}, ${machine.platform}, load(1m) ${machine.loadAverage1m} at start`,
    `command: ${report.command}`,
    '',
    line(header),
    rule,
    ...rows.map(line),
  ];
  lines.push('');
  for (const result of report.results) {
    lines.push(
      `${result.id}: ${result.title}; ${(result.durationMs / 1000).toFixed(1)} s; load(1m) ${result.loadAverage1m.start} -> ${result.loadAverage1m.end} on ${machine.cores} cores`,
    );
    if (result.error !== undefined) lines.push(`${result.id}: FAILED: ${result.error}`);
    for (const note of result.notes) lines.push(`${result.id}: ${note}`);
  }
  return lines.join('\n');
}

export async function writeReport(path: string, report: BenchReport): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
}
