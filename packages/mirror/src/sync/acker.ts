import type { Logger } from '@metasync/shared/daemon';
import type { IndexLog } from '../index/index-log.js';
import type { PrimaryClient } from './primary-client.js';

export interface AckerOptions {
  mirrorId: string;
  region: string;
  publicUrl: () => string;
  log: IndexLog;
  client: PrimaryClient;
  logger: Logger;
  stopping: () => boolean;
}

export interface Acker {
  /** Acknowledges the applied seq; one call at a time, it loops while applies overtake it. Never throws. */
  ack(): Promise<void>;
}

/** Tells the primary which generation this mirror applied (its lag), best effort: a failed ack waits for the next apply. */
export function createAcker(options: AckerOptions): Acker {
  const { log, client, logger, stopping } = options;
  let ackInFlight = false;
  let ackedSeq = 0;

  async function ack(): Promise<void> {
    if (ackInFlight || stopping()) return;
    ackInFlight = true;
    try {
      while (ackedSeq < log.state.seq && !stopping()) {
        const seq = log.state.seq;
        await client.ack({ mirrorId: options.mirrorId, region: options.region, url: options.publicUrl(), seq, appliedAt: Date.now() });
        ackedSeq = seq;
      }
    } catch (err) {
      logger.warn({ err, seq: log.state.seq }, 'ack failed');
    } finally {
      ackInFlight = false;
    }
  }

  return { ack };
}
