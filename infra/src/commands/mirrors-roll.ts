import { isMetasyncError, metasyncError } from '@metasync/shared';
import { createLauncher } from '../launch/launchers.js';
import type { LaunchedServer, LauncherKind } from '../launch/launcher.js';
import { probeMirror } from '../remote.js';
import { requirePrimary, type CommandContext, type ResolvedMirror } from './context.js';
import { requirePrimaryToken, revokeEnrollment } from './enroll.js';
import { launchMirror } from './mirror-launch.js';
import { retireMirror } from './mirror-retire.js';
import { registerInDns, waitCaughtUp } from './mirror-wait.js';

export interface MirrorsRollOptions {
  to: string;
  launch: LauncherKind;
  timeoutMs: number;
  pollMs: number;
  force: boolean;
}

/**
 * Rolling replacement: servers are immutable, so an upgrade is a new server
 * per old one, region by region, one at a time:
 *
 *   launch <id>-v<to> -> wait caught up and fresh -> register in DNS -> fresh again
 *     -> retire the old one (DNS out, TTL, drain, destroy, health check, credential)
 *
 * A region gains its new mirror before it loses the old, so it never has fewer
 * healthy mirrors than before. The first failure stops the roll: a new server
 * that did not get fresh was never in DNS and is destroyed, so DNS keeps
 * pointing only at mirrors that were healthy. Names are deterministic and every
 * step idempotent, so a rerun resumes where it stopped.
 */
export async function runMirrorsRoll(ctx: CommandContext, options: MirrorsRollOptions): Promise<number> {
  const primary = requirePrimary(ctx.config);
  const primaryToken = requirePrimaryToken(ctx.config, 'mirrors roll (it enrolls the new mirrors and revokes the old)');
  const launcher = createLauncher(options.launch, ctx.config, ctx.clock);
  const servers = await launcher.list();
  for (const server of servers.filter((s) => s.releaseVersion !== options.to && s.state !== 'running'))
    ctx.io.err(`skipping ${server.mirrorId} (release ${server.releaseVersion}): it is not running; retire it with mirror retire`);
  const old = servers
    .filter((s) => s.releaseVersion !== options.to && s.state === 'running')
    .sort((a, b) => a.region.localeCompare(b.region) || a.mirrorId.localeCompare(b.mirrorId));
  if (old.length === 0) {
    ctx.io.out(`every running ${options.launch} mirror already runs release ${options.to}`);
    return 0;
  }
  ctx.io.err(
    `rolling ${old.length} mirror(s) to release ${options.to}: ${old.map((s) => `${s.mirrorId} (${s.region}, ${s.releaseVersion})`).join(', ')}`,
  );
  const done: string[] = [];
  for (const server of old) {
    const newId = replacementId(server.mirrorId, options.to);
    try {
      await replaceOne(ctx, { server, newId, primary, primaryToken, options });
    } catch (err) {
      const summary = `roll to ${options.to} stopped at ${server.mirrorId} -> ${newId}${done.length === 0 ? '' : ` (replaced so far: ${done.join(', ')})`}`;
      if (isMetasyncError(err))
        throw metasyncError(err.code, `${summary}: ${err.message}`, { ...err.details, mirrorId: server.mirrorId }, err);
      throw err;
    }
    done.push(`${server.mirrorId} -> ${newId}`);
    ctx.io.out(`replaced ${server.mirrorId} (${server.releaseVersion}) with ${newId} (${options.to}) in region ${server.region}`);
  }
  ctx.io.out(`rolled ${done.length} mirror(s) to release ${options.to}`);
  return 0;
}

async function replaceOne(
  ctx: CommandContext,
  input: { server: LaunchedServer; newId: string; primary: string; primaryToken: string; options: MirrorsRollOptions },
): Promise<void> {
  const { server, newId, options } = input;
  ctx.io.err(`[${server.region}] launching ${newId} on release ${options.to} to replace ${server.mirrorId}`);
  let fresh: ResolvedMirror;
  try {
    fresh = await launchMirror(ctx, { mirrorId: newId, kind: options.launch, overrides: { region: server.region }, release: options.to });
    await waitCaughtUp(ctx, fresh, { primary: input.primary, timeoutMs: options.timeoutMs, pollMs: options.pollMs });
  } catch (err) {
    // Never registered, so DNS never pointed at it: remove it and leave the old mirror serving.
    ctx.io.err(`${newId} did not start or get fresh: destroying it; ${server.mirrorId} keeps serving`);
    await createLauncher(options.launch, ctx.config, ctx.clock).destroy(newId, (line) => ctx.io.err(`  ${line}`));
    // Its credential goes too; a failure here must not hide the error that stopped the roll.
    await revokeEnrollment(ctx, { mirrorId: newId, token: input.primaryToken }).catch((revokeErr: unknown) =>
      ctx.io.err(`warning: could not revoke the credential of ${newId}: ${(revokeErr as Error).message}`),
    );
    throw err;
  }
  await registerInDns(ctx, fresh);
  const probe = await probeMirror({ url: fresh.url, healthUrl: fresh.healthUrl });
  if (probe.health !== 'fresh')
    throw metasyncError(
      'METASYNC_ERR_CLI_TIMEOUT',
      `${newId} went ${probe.health} right after its DNS registration (${probe.detail}); ${server.mirrorId} was not retired`,
      {
        mirrorId: newId,
      },
    );
  const old: ResolvedMirror = {
    mirrorId: server.mirrorId,
    url: server.url,
    region: server.region,
    address: server.address,
    healthUrl: server.healthUrl,
    launcher: options.launch,
  };
  ctx.io.err(`[${server.region}] ${newId} is fresh and in DNS: retiring ${server.mirrorId}`);
  await retireMirror(ctx, old, {
    timeoutMs: options.timeoutMs,
    force: options.force,
    primaryToken: input.primaryToken,
    command: 'mirrors roll: retire',
  });
}

/** `<id>-v<version>`, replacing an earlier `-v<...>` suffix: eu-1 -> eu-1-v0-2-0 -> eu-1-v0-3-0. */
export function replacementId(mirrorId: string, version: string): string {
  const base = mirrorId.replace(/-v[0-9][A-Za-z0-9-]*$/, '');
  return `${base}-v${version.replace(/[^A-Za-z0-9]+/g, '-')}`.slice(0, 64);
}
