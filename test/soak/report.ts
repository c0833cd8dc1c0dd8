import { FAILURE_KINDS } from './client-load.js';
import type { SoakResult } from './soak.js';
import type { ProcessSample } from './process-sampler.js';

/**
 * Turns a soak result into the printed report and a PASS/FAIL per target
 * (issue 5): zero failed requests for existing packages, zero bad bytes,
 * RSS growth after warm-up under a limit, no descriptor growth; plus no failed
 * publish and full convergence at the end.
 */
/**
 * How far a mirror's socket floor may move between two samples without a leak:
 * what its connection pools can hold open at once. A faulted hop (blackhole,
 * delay, drop) keeps pooled connections waiting out their timeouts, so a sample
 * taken in such a phase sees the pools full: the sync pool (--fetch-concurrency,
 * 16 by default), the proxy fallback pool (16), the push stream, and one
 * keep-alive connection per client worker. A leak grows past any such bound
 * within minutes (the run switches faults every few seconds); a pool does not.
 */
function heapLine(start: ProcessSample, end: ProcessSample): string {
  if (start.heapUsedBytes === undefined || end.heapUsedBytes === undefined) return '';
  return `, V8 heap used ${mib(start.heapUsedBytes)} -> ${mib(end.heapUsedBytes)}`;
}

export function poolSocketWidth(workers: number): number {
  const SYNC_POOL = 16;
  const PROXY_POOL = 16;
  const PUSH_STREAM = 1;
  return SYNC_POOL + PROXY_POOL + PUSH_STREAM + workers;
}

export interface TargetLimits {
  /** Largest allowed RSS growth from the start to the end sample, percent. */
  rssGrowthPct: number;
  /** Largest allowed growth of the non-socket descriptor floor (files, pipes, event fds). */
  fdGrowth: number;
  /** Largest allowed growth of the socket floor: connection pools widen and narrow with load. */
  socketGrowth: number;
}

export interface TargetVerdict {
  name: string;
  pass: boolean;
  detail: string;
}

export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function failedRequests(result: SoakResult): number {
  return FAILURE_KINDS.reduce((sum, kind) => sum + result.outcomes[kind], 0);
}

export function evaluateTargets(result: SoakResult, limits: TargetLimits): TargetVerdict[] {
  const verdicts: TargetVerdict[] = [];
  const failed = failedRequests(result);
  verdicts.push({
    name: 'zero failed requests for existing packages',
    pass: failed === 0,
    detail: `${failed} failed of ${result.requests}`,
  });
  verdicts.push({
    name: 'zero bad bytes',
    pass: result.outcomes['bad-bytes'] === 0,
    detail: `${result.outcomes['bad-bytes']} responses failed their ETag hash or held another package`,
  });
  verdicts.push({
    name: 'zero failed publishes',
    pass: result.publishFailures.length === 0,
    detail: `${result.publishFailures.length} of ${result.publishes + result.publishFailures.length}`,
  });
  const { convergence } = result;
  const converged = convergence.mismatches.length === 0 && convergence.mirrorSeqs.every((seq) => seq >= convergence.headSeq);
  verdicts.push({
    name: 'mirrors converge to the primary at the end',
    pass: converged,
    detail: `head ${convergence.headSeq}, mirrors at ${convergence.mirrorSeqs.join('/')}, ${convergence.pathsChecked} paths compared, ${convergence.mismatches.length} mismatches`,
  });
  for (const [name, start] of Object.entries(result.processes.start)) {
    const end = result.processes.end[name];
    if (end === undefined) continue;
    const growthPct = ((end.rssBytes - start.rssBytes) / start.rssBytes) * 100;
    verdicts.push({
      name: `${name}: RSS growth after warm-up < ${limits.rssGrowthPct}%`,
      pass: growthPct < limits.rssGrowthPct,
      detail: `${mib(start.rssBytes)} -> ${mib(end.rssBytes)} (${signed(growthPct)}%)`,
    });
    verdicts.push({
      name: `${name}: non-socket descriptors grow by <= ${limits.fdGrowth}`,
      pass: end.otherFds - start.otherFds <= limits.fdGrowth,
      detail: `${start.otherFds} -> ${end.otherFds}`,
    });
    verdicts.push({
      name: `${name}: sockets grow by <= ${limits.socketGrowth}`,
      pass: end.sockets - start.sockets <= limits.socketGrowth,
      detail: `${start.sockets} -> ${end.sockets}`,
    });
  }
  return verdicts;
}

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(1)}`;
}

function stats(values: readonly number[]): string {
  if (values.length === 0) return 'n=0';
  const f = (v: number | undefined): string => (v === undefined ? '-' : `${Math.round(v)}`);
  return `n=${values.length} p50 ${f(percentile(values, 50))} ms, p90 ${f(percentile(values, 90))} ms, p99 ${f(percentile(values, 99))} ms, max ${f(Math.max(...values))} ms`;
}

export function formatReport(result: SoakResult, verdicts: readonly TargetVerdict[]): string {
  const lines: string[] = [];
  const o = result.options;
  lines.push('== metasync soak ==');
  lines.push(
    `duration ${Math.round(o.durationMs / 1000)} s (warm-up ${Math.round(o.warmupMs / 1000)} s), wall ${Math.round(result.elapsedMs / 1000)} s; ${o.mirrors} mirrors, ${o.faultedMirrors} behind fault proxies (phase ${o.faultPhaseMs} ms); ${o.workers} client workers; publish every ${o.publishIntervalMs} ms; mirror hot cache ${o.hotCacheBytes} bytes; seed ${o.seed}`,
  );
  lines.push(
    `fault switches: ${Object.entries(result.faultSwitches)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  lines.push(`requests served: ${result.requests} (${(result.requests / (o.durationMs / 1000)).toFixed(0)}/s)`);
  lines.push(
    `outcomes: ${Object.entries(result.outcomes)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  lines.push(
    '  (404-link-down: 404 from a mirror whose link to the primary was faulted and that had not applied the package yet; invariant 5 prescribes it, not counted as a failure)',
  );
  lines.push(
    `errors by kind: 404 for existing ${result.outcomes['404-existing']}, 5xx ${result.outcomes['5xx']}, hash mismatches ${result.outcomes['bad-bytes']}, timeouts ${result.outcomes.timeout}, network ${result.outcomes.network}, other status ${result.outcomes['other-status']}, unexpected 304 ${result.outcomes['unexpected-304']}`,
  );
  for (const sample of result.failureSamples.slice(0, 10)) lines.push(`  ${sample}`);
  lines.push(`publishes: ${result.publishes}, failed ${result.publishFailures.length}; publish call ${stats(result.publishLatenciesMs)}`);
  for (const failure of result.publishFailures.slice(0, 5)) lines.push(`  ${failure}`);
  lines.push(`publish-to-visible on all ${o.mirrors} mirrors: ${stats(result.visibleAllMs)}`);
  result.visiblePerMirrorMs.forEach((values, i) =>
    lines.push(`  mirror-${i}${i > 0 && i <= o.faultedMirrors ? ' (faulted link)' : ''}: ${stats(values)}`),
  );
  lines.push('processes (start = after warm-up, median RSS / descriptor floor of 5 readings):');
  for (const [name, start] of Object.entries(result.processes.start)) {
    const end = result.processes.end[name]!;
    lines.push(
      `  ${name}: RSS ${mib(start.rssBytes)} -> ${mib(end.rssBytes)} (${signed(((end.rssBytes - start.rssBytes) / start.rssBytes) * 100)}%), fds ${start.fds} -> ${end.fds} (${signed(((end.fds - start.fds) / start.fds) * 100)}%; sockets ${start.sockets} -> ${end.sockets}, other ${start.otherFds} -> ${end.otherFds})${heapLine(start, end)}`,
    );
  }
  lines.push('RSS every 30 s of load (MiB):');
  for (const [name, series] of Object.entries(result.rssSeriesMiB)) lines.push(`  ${name}: ${series.join(' ')}`);
  for (const mismatch of result.convergence.mismatches.slice(0, 5)) lines.push(`  convergence: ${mismatch}`);
  lines.push('targets:');
  for (const verdict of verdicts) lines.push(`  ${verdict.pass ? 'PASS' : 'FAIL'}  ${verdict.name}: ${verdict.detail}`);
  lines.push(verdicts.every((v) => v.pass) ? 'RESULT: PASS' : 'RESULT: FAIL');
  return lines.join('\n');
}
