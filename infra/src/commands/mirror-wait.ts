import { SingleBar } from 'cli-progress';
import { createRegistrar } from '@metasync/dns';
import { metasyncError } from '@metasync/shared';
import { fetchPrimaryState, probeMirror } from '../remote.js';
import type { CommandContext, ResolvedMirror } from './context.js';

/**
 * Waits until the mirror serves at least the primary's head as of the start and
 * its freshness endpoint says `fresh`, with a progress bar on a TTY and a line
 * per change otherwise. A mirror still bootstrapping never receives a client:
 * callers register it in DNS only after this returns.
 */
export async function waitCaughtUp(
  ctx: CommandContext,
  mirror: ResolvedMirror,
  options: { primary: string; timeoutMs: number; pollMs: number },
): Promise<void> {
  const target = (await fetchPrimaryState(options.primary)).seq;
  ctx.io.err(`waiting for ${mirror.mirrorId} (${mirror.url}) to reach seq ${target} and report fresh`);
  const bar =
    ctx.io.progressStream.isTTY === true
      ? new SingleBar({ stream: ctx.io.progressStream, format: ' {bar} seq {value}/{total} | {health}', hideCursor: true })
      : undefined;
  bar?.start(Math.max(1, target), 0, { health: 'probing' });
  const started = ctx.clock.now();
  let lastLine = '';
  try {
    for (let poll = 0; ; poll++) {
      const probe = await probeMirror({ url: mirror.url, healthUrl: mirror.healthUrl });
      const seq = probe.seq ?? 0;
      const caughtUp = seq >= target && probe.health === 'fresh';
      bar?.update(Math.min(seq, Math.max(1, target)), { health: probe.health });
      const line = `  seq ${probe.seq ?? '-'}/${target}, health ${probe.health}${probe.detail === '' ? '' : `: ${probe.detail}`}`;
      if (bar === undefined && line !== lastLine) ctx.io.err(line);
      lastLine = line;
      if (caughtUp) break;
      if (ctx.clock.now() - started + options.pollMs > options.timeoutMs || poll > 1_000_000) {
        throw metasyncError(
          'METASYNC_ERR_CLI_TIMEOUT',
          `mirror ${mirror.mirrorId} did not catch up within ${options.timeoutMs} ms (${line.trim()}); it was NOT registered in DNS`,
          { mirrorId: mirror.mirrorId, url: mirror.url },
        );
      }
      await ctx.clock.sleep(options.pollMs);
    }
  } finally {
    bar?.stop();
  }
  ctx.io.err(`${mirror.mirrorId} is caught up and fresh`);
}

/** Registers the mirror (record and health check); false when the DNS provider is `none`. */
export async function registerInDns(ctx: CommandContext, mirror: ResolvedMirror): Promise<boolean> {
  const dns = await createRegistrar(ctx.config, ctx.clock);
  if (dns === undefined) {
    ctx.io.err('dns provider is none: not registering');
    return false;
  }
  try {
    await dns.registrar.register(
      { mirrorId: mirror.mirrorId, region: mirror.region, address: mirror.address, healthUrl: mirror.healthUrl },
      { onStep: (e) => void (e.phase === 'start' && ctx.io.err(`  dns: ${e.step}`)) },
    );
  } finally {
    dns.close();
  }
  ctx.io.out(`registered ${mirror.mirrorId} (${mirror.address}, region ${mirror.region}) in ${dns.registrar.kind}`);
  return true;
}
