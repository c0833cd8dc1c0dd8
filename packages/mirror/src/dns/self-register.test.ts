import type { DnsRegistrar, MirrorEndpoint } from '@metasync/dns';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '@metasync/shared/daemon';
import { createSelfRegistration } from './self-register.js';

const endpoint: MirrorEndpoint = {
  mirrorId: 'm1',
  region: 'eu-west-1',
  address: '192.0.2.1',
  healthUrl: 'http://192.0.2.1:8080/health/fresh',
};
const logger = createLogger({ name: 'test', level: 'silent' });

/** Records calls in order; `register` can be held open or made to fail. */
function fakeRegistrar(): DnsRegistrar & { calls: string[]; failRegister: number; hold?: Promise<void> } {
  const fake = {
    kind: 'route53' as const,
    calls: [] as string[],
    failRegister: 0,
    hold: undefined as Promise<void> | undefined,
    async register(mirror: MirrorEndpoint) {
      fake.calls.push(`register:${mirror.mirrorId}`);
      if (fake.hold !== undefined) await fake.hold;
      if (fake.failRegister > 0) {
        fake.failRegister--;
        throw new Error('Throttling');
      }
      fake.calls.push('register-done');
    },
    async withdraw() {
      fake.calls.push('withdraw');
    },
    async retire() {
      fake.calls.push('retire');
    },
    async list() {
      return [];
    },
  };
  return fake;
}

describe('self-registration', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('registers only once the mirror is fresh', async () => {
    const registrar = fakeRegistrar();
    let fresh = false;
    const reg = createSelfRegistration({ registrar, endpoint, isFresh: () => fresh, logger, pollMs: 100 });
    reg.start();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(registrar.calls).toEqual([]);
    fresh = true;
    await vi.advanceTimersByTimeAsync(100);
    expect(registrar.calls).toEqual(['register:m1', 'register-done']);
    expect(reg.registered).toBe(true);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(registrar.calls).toHaveLength(2);
  });

  it('retries a failed register with backoff', async () => {
    const registrar = fakeRegistrar();
    registrar.failRegister = 2;
    const reg = createSelfRegistration({ registrar, endpoint, isFresh: () => true, logger, pollMs: 100, maxRetryDelayMs: 300 });
    reg.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(registrar.calls).toEqual(['register:m1']);
    await vi.advanceTimersByTimeAsync(200);
    expect(registrar.calls).toEqual(['register:m1', 'register:m1']);
    await vi.advanceTimersByTimeAsync(300);
    expect(registrar.calls).toEqual(['register:m1', 'register:m1', 'register:m1', 'register-done']);
  });

  it('withdraw waits for a register in flight, then withdraws, and no register follows', async () => {
    const registrar = fakeRegistrar();
    let release: () => void = () => undefined;
    registrar.hold = new Promise((resolve) => {
      release = resolve;
    });
    const reg = createSelfRegistration({ registrar, endpoint, isFresh: () => true, logger, pollMs: 100 });
    reg.start();
    await vi.advanceTimersByTimeAsync(0);
    const withdrawn = reg.withdraw();
    await vi.advanceTimersByTimeAsync(0);
    expect(registrar.calls).toEqual(['register:m1']);
    release();
    await withdrawn;
    expect(registrar.calls).toEqual(['register:m1', 'register-done', 'withdraw']);
    reg.start();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(registrar.calls).toHaveLength(3);
    expect(reg.registered).toBe(false);
  });

  it('retire withdraws first and deletes the health check last; a drained mirror never registers', async () => {
    const registrar = fakeRegistrar();
    const reg = createSelfRegistration({ registrar, endpoint, isFresh: () => false, logger, pollMs: 100 });
    reg.start();
    await reg.withdraw();
    await reg.retire();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(registrar.calls).toEqual(['withdraw', 'retire']);
  });
});
