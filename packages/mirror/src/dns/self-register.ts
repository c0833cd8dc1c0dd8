import type { DnsRegistrar, MirrorEndpoint } from '@metasync/dns/registrar';
import type { Logger } from '@metasync/shared/daemon';

/**
 * Opt-in self-registration (`--dns-self-register`): an immutable server needs
 * nothing but its config to enter DNS and leave it again.
 *
 *   start()    poll freshness; once fresh (the rule `/health/fresh` applies,
 *              like `metasync mirror up`), register: health check + record.
 *              A failed register is retried with backoff until withdraw().
 *   withdraw() stop registering, let an in-flight register finish, then take
 *              the record out (INSYNC, one TTL plus margin). Drain and SIGTERM.
 *   retire()   withdraw, then delete the health check: the last step of a
 *              shutdown, once the listener is closed.
 *
 * Every registrar call is idempotent, so a crash at any point is finished by
 * the next start (register again) or by `metasync mirror retire`.
 */
export interface SelfRegistration {
  start(): void;
  withdraw(): Promise<void>;
  retire(): Promise<void>;
  /** Whether the record was registered by this process and not withdrawn since. */
  readonly registered: boolean;
}

export interface SelfRegistrationOptions {
  registrar: DnsRegistrar;
  endpoint: MirrorEndpoint;
  /** The same rule `/health/fresh` answers with (and false while draining). */
  isFresh: () => boolean;
  logger: Logger;
  /** Freshness poll while waiting to register. */
  pollMs?: number;
  /** Backoff after a failed register: doubles from pollMs up to this. */
  maxRetryDelayMs?: number;
}

export function createSelfRegistration(options: SelfRegistrationOptions): SelfRegistration {
  const { registrar, endpoint, logger } = options;
  const ref = { mirrorId: endpoint.mirrorId, region: endpoint.region };
  const pollMs = options.pollMs ?? 500;
  const maxRetryDelayMs = options.maxRetryDelayMs ?? 60_000;
  let stopped = false;
  let registered = false;
  let timer: NodeJS.Timeout | undefined;
  let registering: Promise<void> | undefined;
  let withdrawing: Promise<void> | undefined;
  let failures = 0;

  const schedule = (delayMs: number): void => {
    if (stopped) return;
    timer = setTimeout(tick, delayMs);
    timer.unref();
  };

  function tick(): void {
    timer = undefined;
    if (stopped) return;
    if (!options.isFresh()) {
      schedule(pollMs);
      return;
    }
    logger.info(
      { mirrorId: endpoint.mirrorId, region: endpoint.region, address: endpoint.address, healthUrl: endpoint.healthUrl },
      'dns: registering',
    );
    registering = registrar.register(endpoint).then(
      () => {
        registered = true;
        failures = 0;
        logger.info({ mirrorId: endpoint.mirrorId, region: endpoint.region }, 'dns: registered');
      },
      (err: unknown) => {
        failures++;
        const delayMs = Math.min(maxRetryDelayMs, pollMs * 2 ** Math.min(failures, 16));
        logger.error({ err, mirrorId: endpoint.mirrorId, retryInMs: delayMs }, 'dns: register failed');
        schedule(delayMs);
      },
    );
  }

  async function doWithdraw(): Promise<void> {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    // A register in flight finishes first (its failure is already logged), so the withdraw sees its record.
    await registering;
    logger.info({ mirrorId: endpoint.mirrorId, region: endpoint.region }, 'dns: withdrawing');
    await registrar.withdraw(ref);
    registered = false;
    logger.info({ mirrorId: endpoint.mirrorId, region: endpoint.region }, 'dns: withdrawn');
  }

  const withdraw = (): Promise<void> => {
    withdrawing ??= doWithdraw().catch((err: unknown) => {
      withdrawing = undefined;
      throw err;
    });
    return withdrawing;
  };

  return {
    start() {
      if (stopped || timer !== undefined || registering !== undefined) return;
      schedule(0);
    },
    withdraw,
    async retire() {
      await withdraw();
      await registrar.retire(ref);
      logger.info({ mirrorId: endpoint.mirrorId, region: endpoint.region }, 'dns: health check deleted');
    },
    get registered() {
      return registered;
    },
  };
}
