import { isMetasyncError } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import { armConfirmation, noteHead, type SyncStatus } from '../health.js';
import type { IndexLog } from '../index/index-log.js';
import type { MirrorMetrics } from '../metrics.js';
import { backoffMs, followEvents, type EventStream } from './events.js';
import type { PolledState } from './state-poll.js';

export interface SchedulerOptions {
  /** One sync run (pull, then housekeeping); a throw schedules a retry. */
  run: () => Promise<void>;
  /** The primary's state for a poll: a run is triggered when its seq is not the applied one. */
  fetchState: () => Promise<PolledState>;
  log: IndexLog;
  status: SyncStatus;
  metrics: MirrorMetrics;
  logger: Logger;
  primaryUrl: string;
  mirrorId: string;
  /** Names the mirror on the push stream (events.ts). */
  credential?: string | undefined;
  connectTimeoutMs: number;
  /** --primary-ca, for the push stream. */
  primaryCa?: Buffer | undefined;
  pollIntervalMs: number;
  /** Interval of runs triggered for housekeeping alone. */
  housekeepingIntervalMs: number;
  /** Silence after which the push stream is reconnected (events.ts). */
  eventsIdleTimeoutMs?: number;
  /** Disable the SSE stream (tests of the poll fallback). */
  useEvents?: boolean;
}

export interface Scheduler {
  start(): void;
  /** Request a run; returns when the run that will see it finishes. */
  trigger(reason: string): Promise<void>;
  stop(): Promise<void>;
  stopping(): boolean;
}

/**
 * When the mirror syncs. Triggers (SSE head, poll, reconnect, retry timer,
 * housekeeping timer) only set a flag; one run at a time (single flight), and
 * it loops while triggers arrived during it, so bursts coalesce into few pulls.
 *
 *   trigger --> [running?] --yes--> again = true
 *                   | no
 *                   v
 *                  run --ok--> again? run once more
 *                   |
 *                   +--throws--> status.lastError, retry timer (backoff + jitter)
 */
export function createScheduler(options: SchedulerOptions): Scheduler {
  const { log, status, metrics, logger } = options;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  let failures = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let pollTimer: NodeJS.Timeout | undefined;
  let housekeepingTimer: NodeJS.Timeout | undefined;
  let events: EventStream | undefined;
  let polling = false;

  async function work(): Promise<void> {
    do {
      again = false;
      try {
        await options.run();
        failures = 0;
        status.lastError = undefined;
      } catch (err) {
        failures++;
        status.lastError = isMetasyncError(err) ? err.code : (err as Error).message;
        metrics.syncErrors.inc({ code: isMetasyncError(err) ? err.code : 'unexpected' });
        const delayMs = backoffMs(failures, 100, 5_000);
        logger.warn({ err, failures, retryInMs: delayMs }, 'sync failed');
        scheduleRetry(delayMs);
        return;
      }
    } while (again && !stopped);
  }

  function scheduleRetry(delayMs: number): void {
    if (stopped) return;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => void trigger('retry'), delayMs);
    retryTimer.unref();
  }

  function trigger(reason: string): Promise<void> {
    if (stopped) return Promise.resolve();
    if (running !== undefined) {
      again = true;
      logger.trace({ reason }, 'sync coalesced');
      return running;
    }
    running = work().finally(() => {
      running = undefined;
    });
    return running;
  }

  async function poll(): Promise<void> {
    if (polling || stopped) return;
    polling = true;
    try {
      const { hint } = await options.fetchState();
      if (hint.seq !== log.state.seq) void trigger('poll');
    } catch (err) {
      status.lastError = isMetasyncError(err) ? err.code : (err as Error).message;
      logger.debug({ err }, 'poll failed');
    } finally {
      polling = false;
    }
  }

  return {
    start() {
      armConfirmation(status);
      void trigger('start');
      pollTimer = setInterval(() => void poll(), options.pollIntervalMs);
      housekeepingTimer = setInterval(() => void trigger('gc'), options.housekeepingIntervalMs);
      if (options.useEvents !== false) {
        events = followEvents({
          primaryUrl: options.primaryUrl,
          mirrorId: options.mirrorId,
          credential: options.credential,
          connectTimeoutMs: options.connectTimeoutMs,
          ca: options.primaryCa,
          ...(options.eventsIdleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.eventsIdleTimeoutMs }),
          logger,
          onHead(head) {
            noteHead(status, head.seq, log.state.seq, status.monoNowMs());
            if (head.seq > log.state.seq) void trigger('head');
          },
          onActivity() {
            status.heardAtMs = status.monoNowMs();
          },
          onConnected() {
            void trigger('connected');
          },
        });
      }
    },
    trigger,
    async stop() {
      stopped = true;
      clearTimeout(retryTimer);
      clearInterval(pollTimer);
      clearInterval(housekeepingTimer);
      await events?.stop();
      await running;
    },
    stopping: () => stopped,
  };
}
