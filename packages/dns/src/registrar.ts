/**
 * The DNS registrar: puts a mirror into DNS (with a health check on its
 * freshness endpoint) and takes it out again. Two implementations: Route53
 * (`route53/registrar.ts`) and PowerDNS (`powerdns/registrar.ts`).
 *
 * Every operation is idempotent: a rerun after a crash at any step finishes the
 * job, so the CLI and a self-registering mirror can simply call it again.
 */

/** A mirror as DNS sees it. */
export interface MirrorEndpoint {
  mirrorId: string;
  /** Region name; for Route53 it is the AWS region of the latency record (e.g. `eu-west-1`). */
  region: string;
  /** IPv4 or IPv6 address the answers carry. */
  address: string;
  /** The mirror's freshness URL, e.g. `http://203.0.113.5:8080/health/fresh` (healthy body starts `fresh`). */
  healthUrl: string;
}

export interface MirrorRef {
  mirrorId: string;
  region: string;
}

/**
 * registered: answer record and health check both present and linked.
 * record-only: a record without a live health check (must never be left behind).
 * check-only: a health check with no record (an unfinished register or retire).
 */
export const DNS_STATES = ['registered', 'record-only', 'check-only'] as const;
export type DnsState = (typeof DNS_STATES)[number];

export interface DnsEntry {
  mirrorId: string;
  region?: string;
  address?: string;
  healthCheckId?: string;
  /** The freshness URL its health check fetches, when the provider's listing carries it (PowerDNS does). */
  healthUrl?: string;
  state: DnsState;
}

/** One step of a register or retire, reported before (`start`) and after (`done`) it runs. */
export interface StepEvent {
  step: string;
  phase: 'start' | 'done';
  detail?: Record<string, unknown>;
}

/** Progress listener; the CLI prints these. An exception thrown here aborts the operation. */
export type StepListener = (event: StepEvent) => void | Promise<void>;

export interface RegistrarCallOptions {
  onStep?: StepListener;
}

export interface DnsRegistrar {
  readonly kind: 'route53' | 'powerdns';
  register(mirror: MirrorEndpoint, options?: RegistrarCallOptions): Promise<void>;
  /**
   * Takes the mirror out of the answers and returns once the change is live
   * and one TTL plus a margin has passed: clients have stopped using it, so
   * it may be stopped now. Its health check stays until `retire`.
   */
  withdraw(mirror: MirrorRef, options?: RegistrarCallOptions): Promise<void>;
  /** `withdraw` (if not done yet), then delete the mirror's health check and forget it. */
  retire(mirror: MirrorRef, options?: RegistrarCallOptions): Promise<void>;
  list(): Promise<DnsEntry[]>;
}

/** Real time by default; tests inject a fake one. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** Adds the trailing dot DNS APIs list names with, and lowercases. */
export function absoluteName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower : `${lower}.`;
}

/** Runs one named step between its start and done events. */
export async function step<T>(
  onStep: StepListener | undefined,
  name: string,
  detail: Record<string, unknown>,
  fn: () => Promise<T>,
): Promise<T> {
  await onStep?.({ step: name, phase: 'start', detail });
  const result = await fn();
  await onStep?.({ step: name, phase: 'done', detail });
  return result;
}
