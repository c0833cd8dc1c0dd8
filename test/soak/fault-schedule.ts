import type { FaultMode, FaultProxy } from '../helpers/fault-proxy.js';

/**
 * Drives the fault proxies between mirrors and the primary through every mode
 * in turn, each proxy offset by a fraction of the cycle so the links are not
 * all down at once. A switch into or out of a broken mode drops the proxy's
 * live connections (a blackholed keep-alive socket would otherwise linger in a
 * mirror's pool until its timeout), and counts as a reset at that instant.
 *
 * It keeps, per proxy, the intervals during which the link was anything but
 * healthy: a 404 from a mirror whose link was broken (and which had not yet
 * applied the package) is what invariant 5 prescribes, so the client load
 * needs those windows to tell an excused 404 from a failure.
 */
export const FAULT_CYCLE: readonly FaultMode[] = [
  { kind: 'delay', ms: 120 },
  { kind: 'drop' },
  { kind: 'pass' },
  { kind: 'reset' },
  { kind: 'truncate', afterBytes: 1500 },
  { kind: 'pass' },
  { kind: 'corrupt', probability: 0.3 },
  { kind: 'blackhole' },
  { kind: 'pass' },
];

/** Modes during which the mirror can still reach the primary for syncing and for its proxy fallback. */
export function isHealthyLink(mode: FaultMode): boolean {
  return mode.kind === 'pass' || mode.kind === 'delay';
}

export interface FaultWindow {
  kind: FaultMode['kind'];
  startMs: number;
  /** undefined while the fault is still on. */
  endMs: number | undefined;
}

export interface FaultSchedule {
  /** True when the link was unhealthy at any time in [fromMs - graceMs, toMs]. */
  linkFaultedDuring(proxyIndex: number, fromMs: number, toMs: number): boolean;
  /** Number of mode switches per kind, for the report. */
  switches(): Record<string, number>;
  /** Sets every proxy to pass and stops switching. */
  stop(): void;
  /** Sets every proxy to pass (keeps the timer), e.g. for a settle phase before measuring. */
  pauseClean(): void;
  resume(): void;
}

export interface FaultScheduleOptions {
  proxies: readonly FaultProxy[];
  phaseMs: number;
  /**
   * How long after a fault ends its effects may still show: a request started
   * just before the switch may still be waiting on a dead connection, and a
   * mirror reconnects with backoff. Use the mirror's proxy timeout plus margin.
   */
  graceMs: number;
}

export function startFaultSchedule(options: FaultScheduleOptions): FaultSchedule {
  const windows: FaultWindow[][] = options.proxies.map(() => []);
  const counts: Record<string, number> = {};
  let tick = 0;
  let paused = false;

  const setMode = (index: number, mode: FaultMode): void => {
    const proxy = options.proxies[index]!;
    const list = windows[index]!;
    const open = list.at(-1);
    const now = Date.now();
    if (open !== undefined && open.endMs === undefined) open.endMs = now;
    const previous = proxy.mode();
    proxy.setMode(mode);
    counts[mode.kind] = (counts[mode.kind] ?? 0) + 1;
    // Connections that crossed a broken link carry broken streams (or must start breaking now): drop them.
    // Between healthy modes (pass <-> delay) the mode applies per chunk, so live connections stay.
    if (!isHealthyLink(previous) || !isHealthyLink(mode)) {
      proxy.destroyAll();
      // Dropping live connections is itself a reset fault for requests in flight at this instant.
      list.push({ kind: 'reset', startMs: now, endMs: now });
    }
    if (!isHealthyLink(mode)) list.push({ kind: mode.kind, startMs: now, endMs: undefined });
  };

  const step = (): void => {
    if (paused) return;
    options.proxies.forEach((_proxy, index) => {
      // Offset each proxy by a third of the cycle.
      const offset = Math.floor((index * FAULT_CYCLE.length) / Math.max(3, options.proxies.length));
      setMode(index, FAULT_CYCLE[(tick + offset) % FAULT_CYCLE.length]!);
    });
    tick++;
  };
  step();
  const timer = setInterval(step, options.phaseMs);

  const allClean = (): void => {
    options.proxies.forEach((proxy, index) => {
      if (proxy.mode().kind !== 'pass') setMode(index, { kind: 'pass' });
    });
  };

  return {
    linkFaultedDuring(proxyIndex, fromMs, toMs) {
      const list = windows[proxyIndex];
      if (list === undefined) return false;
      return list.some((w) => w.startMs <= toMs && (w.endMs === undefined || w.endMs + options.graceMs >= fromMs));
    },
    switches: () => ({ ...counts }),
    stop() {
      clearInterval(timer);
      allClean();
      paused = true;
    },
    pauseClean() {
      paused = true;
      allClean();
    },
    resume() {
      paused = false;
    },
  };
}
