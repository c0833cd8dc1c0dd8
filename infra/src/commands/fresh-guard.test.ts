import { describe, expect, it } from 'vitest';
import { systemClock } from '@metasync/dns';
import { loadCliConfig } from '../cli-config.js';
import type { CommandContext } from './context.js';
import { assertFreshRemains, type FreshCount } from './fresh-guard.js';

function context(): { ctx: CommandContext; errors: string[] } {
  const errors: string[] = [];
  const config = loadCliConfig({ env: { XDG_STATE_HOME: '/nonexistent' } });
  return {
    ctx: { config, clock: systemClock, io: { out: () => undefined, err: (text) => errors.push(text), progressStream: process.stderr } },
    errors,
  };
}

const other = (mirrorId: string, region: string, fresh: boolean): FreshCount => ({
  mirrorId,
  region,
  fresh,
  detail: fresh ? 'fresh' : 'down: ECONNREFUSED',
});

describe('assertFreshRemains', () => {
  it('lets a retire go on while its region keeps a fresh mirror', () => {
    const { ctx, errors } = context();
    assertFreshRemains(ctx, {
      mirrorId: 'eu-1',
      region: 'eu',
      others: [other('eu-2', 'eu', true), other('us-1', 'us', false)],
      force: false,
      command: 'mirror retire',
    });
    expect(errors).toEqual([]);
  });

  it('refuses to leave a region with no fresh mirror even when other regions have one, naming the others', () => {
    const { ctx } = context();
    expect(() =>
      assertFreshRemains(ctx, {
        mirrorId: 'eu-1',
        region: 'eu',
        others: [other('eu-2', 'eu', false), other('us-1', 'us', true)],
        force: false,
        command: 'mirror retire',
      }),
    ).toThrow(
      expect.objectContaining({
        code: 'METASYNC_ERR_CLI_NO_FRESH_MIRROR',
        message: expect.stringMatching(
          /would leave region eu with no fresh mirror in DNS[\s\S]*eu-2 \(eu, down: ECONNREFUSED\); us-1 \(us, fresh\)/,
        ),
      }),
    );
  });

  it('refuses to empty the whole name, and with force only warns', () => {
    const { ctx, errors } = context();
    const input = { mirrorId: 'eu-1', region: 'eu', others: [] as FreshCount[], command: 'mirror retire' };
    expect(() => assertFreshRemains(ctx, { ...input, force: false })).toThrow(
      /would leave the service name with no fresh mirror in DNS.*no other mirror is in DNS/,
    );
    assertFreshRemains(ctx, { ...input, force: true });
    expect(errors).toEqual([
      expect.stringContaining(
        'warning: mirror retire eu-1 would leave the service name with no fresh mirror in DNS; going on because of --force',
      ),
    ]);
  });
});
