import { exec } from 'node:child_process';
import { promisify } from 'node:util';
import { createRegistrar } from '@metasync/dns';
import { isMetasyncError, metasyncError } from '@metasync/shared';
import type { MirrorConfig } from '../cli-config.js';
import { drainMirror, probeMirror } from '../remote.js';
import { createLauncher } from '../launch/launchers.js';
import type { LauncherKind } from '../launch/launcher.js';
import { requirePrimary, resolveMirror, type CommandContext, type ResolvedMirror } from './context.js';
import { assertFreshRemains, probeOthersInDns } from './fresh-guard.js';
import { requirePrimaryToken, revokeEnrollment } from './enroll.js';

const execAsync = promisify(exec);

export interface MirrorRetireOptions {
  mirrorId: string;
  overrides: Partial<MirrorConfig>;
  timeoutMs: number;
  /** Retire even when it leaves the region or the name with no fresh mirror in DNS. */
  force?: boolean;
  /** The launcher that created the server, when the config does not say; its record fills what the config lacks. */
  launch?: LauncherKind | undefined;
}

/**
 * First, unless --force, the check that a fresh mirror stays in DNS for the
 * region and the name (fresh-guard.ts); nothing changes when it refuses.
 * Then DNS out (wait until live and one TTL plus margin), then drain, then
 * stop the mirror, then delete its health check. With an admin token
 * configured (METASYNC_ADMIN_TOKEN[_FILE]) the drain is the mirror's
 * POST /admin/drain: its freshness endpoint fails closed, and a self-registered
 * mirror withdraws its own record too. Without one, the graceful SIGTERM
 * shutdown of the stop finishes the requests in flight. A mirror a launcher
 * created is stopped and destroyed through it; any other by its stop command.
 * Last, the mirror's credential is revoked on the primary
 * (METASYNC_PRIMARY_TOKEN[_FILE], checked before anything starts): it leaves
 * the mirrors list and can no longer ack. Every step is idempotent, so a rerun
 * after a crash finishes.
 */
export async function runMirrorRetire(ctx: CommandContext, options: MirrorRetireOptions): Promise<number> {
  // Flags win over the config, which wins over what the launcher knows.
  const given = Object.fromEntries(Object.entries(options.overrides).filter(([, value]) => value !== undefined));
  const launched = await launchedServerOf(ctx, options);
  const mirror = resolveMirror(ctx.config, options.mirrorId, { ...launched, ...ctx.config.mirrors[options.mirrorId], ...given });
  requirePrimary(ctx.config);
  const primaryToken = requirePrimaryToken(ctx.config, 'mirror retire (it revokes the mirror credential)');
  await retireMirror(ctx, mirror, { timeoutMs: options.timeoutMs, force: options.force === true, primaryToken, command: 'mirror retire' });
  ctx.io.out(`retired ${mirror.mirrorId}`);
  return 0;
}

/** The retire steps, shared with `mirrors roll`. */
export async function retireMirror(
  ctx: CommandContext,
  mirror: ResolvedMirror,
  options: { timeoutMs: number; force: boolean; primaryToken: string; command: string },
): Promise<void> {
  const dns = await createRegistrar(ctx.config, ctx.clock);
  const onStep = (e: { step: string; phase: string; detail?: Record<string, unknown> }): void => {
    if (e.phase === 'start') ctx.io.err(`  dns: ${e.step}${e.step === 'wait-ttl' ? ` (${String(e.detail?.waitMs)} ms)` : ''}`);
  };
  try {
    if (dns !== undefined) {
      const entries = await dns.registrar.list();
      // A mirror that is not in the answers takes nothing away from them.
      if (entries.some((entry) => entry.mirrorId === mirror.mirrorId && entry.state !== 'check-only')) {
        const others = await probeOthersInDns(ctx, entries, new Set([mirror.mirrorId]));
        assertFreshRemains(ctx, {
          mirrorId: mirror.mirrorId,
          region: mirror.region,
          others,
          force: options.force,
          command: options.command,
        });
      }
      await dns.registrar.withdraw({ mirrorId: mirror.mirrorId, region: mirror.region }, { onStep });
      ctx.io.err(`${mirror.mirrorId} is out of DNS`);
    }
    if (ctx.config.adminToken !== undefined) {
      ctx.io.err(`draining ${mirror.mirrorId}: POST ${mirror.url}/admin/drain`);
      const drained = await drainMirror({ url: mirror.url, token: ctx.config.adminToken, timeoutMs: options.timeoutMs }).catch(
        async (err: unknown) => {
          // A crashed mirror has no clients to drain: retiring it must still work.
          if (!isMetasyncError(err, 'METASYNC_ERR_SYNC_UNREACHABLE') || (await probeMirror({ url: mirror.url })).health !== 'down')
            throw err;
          return undefined;
        },
      );
      if (drained === undefined) ctx.io.err(`${mirror.mirrorId} does not answer: nothing to drain`);
      else if (drained.outcome === 'disabled')
        ctx.io.err(`${mirror.mirrorId} has no admin token configured (its /admin/drain answered 404): going on without a drain`);
      else ctx.io.err(`${mirror.mirrorId} is draining: ${drained.body}`);
    }
    if (mirror.launcher !== undefined) {
      ctx.io.err(`destroying ${mirror.mirrorId} (${mirror.launcher} launcher)`);
      await createLauncher(mirror.launcher, ctx.config, ctx.clock).destroy(mirror.mirrorId, (line) => ctx.io.err(`  ${line}`));
      await waitUntilDown(ctx, mirror.url, options.timeoutMs, mirror.mirrorId);
    } else if (mirror.stopCommand === undefined) {
      ctx.io.err(`no stopCommand for ${mirror.mirrorId}: stop it yourself now (it receives no new clients)`);
    } else {
      ctx.io.err(`stopping ${mirror.mirrorId}: ${mirror.stopCommand}`);
      try {
        await execAsync(mirror.stopCommand, { timeout: options.timeoutMs });
      } catch (err) {
        throw metasyncError(
          'METASYNC_ERR_CLI_USAGE',
          `stop command for ${mirror.mirrorId} failed: ${(err as Error).message}`,
          { mirrorId: mirror.mirrorId },
          err,
        );
      }
      await waitUntilDown(ctx, mirror.url, options.timeoutMs, mirror.mirrorId);
    }
    if (dns !== undefined) await dns.registrar.retire({ mirrorId: mirror.mirrorId, region: mirror.region }, { onStep });
  } finally {
    dns?.close();
  }
  await revokeEnrollment(ctx, { mirrorId: mirror.mirrorId, token: options.primaryToken });
}

async function waitUntilDown(ctx: CommandContext, url: string, timeoutMs: number, mirrorId: string): Promise<void> {
  const started = ctx.clock.now();
  for (let poll = 0; poll < 100_000; poll++) {
    const probe = await probeMirror({ url, timeoutMs: 1_000 });
    if (probe.health === 'down') return;
    if (ctx.clock.now() - started > timeoutMs) break;
    await ctx.clock.sleep(200);
  }
  throw metasyncError('METASYNC_ERR_CLI_TIMEOUT', `mirror ${mirrorId} still answers at ${url} ${timeoutMs} ms after its stop command`, {
    mirrorId,
    url,
  });
}

/**
 * What `--launch <kind>` knows of a mirror the config does not list: an aws
 * server is found by its tags (nothing is recorded locally), so retire needs
 * no config entry for it.
 */
async function launchedServerOf(ctx: CommandContext, options: MirrorRetireOptions): Promise<Partial<MirrorConfig>> {
  if (options.launch === undefined) return {};
  const server = await createLauncher(options.launch, ctx.config, ctx.clock).find(options.mirrorId);
  if (server === undefined) return { launcher: options.launch };
  return { url: server.url, region: server.region, address: server.address, healthUrl: server.healthUrl, launcher: options.launch };
}
