import type { MirrorConfig } from '../cli-config.js';
import type { LauncherKind } from '../launch/launcher.js';
import { requirePrimary, resolveMirror, type CommandContext } from './context.js';
import { enrollMirror } from './enroll.js';
import { launchMirror } from './mirror-launch.js';
import { registerInDns, waitCaughtUp } from './mirror-wait.js';

export interface MirrorUpOptions {
  mirrorId: string;
  overrides: Partial<MirrorConfig>;
  timeoutMs: number;
  pollMs: number;
  /** Enroll the mirror and write its credential here (`-`: print it) before waiting (enroll.ts). */
  credentialFile?: string | undefined;
  /** Write the primary's active key here, for the mirror's --primary-key-file. */
  primaryKeyFile?: string | undefined;
  /** Create the server first with this launcher (enrolled and pinned by the CLI). */
  launch?: LauncherKind | undefined;
  /** Release the launched server runs (default: this CLI's version). */
  release?: string | undefined;
}

/**
 * With --launch, first creates the server (mirror-launch.ts); else enrolls the
 * mirror and writes its pinned key when asked (so it can be started with both).
 * Then waits until it is caught up and fresh, and only then registers it in DNS.
 */
export async function runMirrorUp(ctx: CommandContext, options: MirrorUpOptions): Promise<number> {
  const primary = requirePrimary(ctx.config);
  let mirror;
  if (options.launch !== undefined) {
    mirror = await launchMirror(ctx, {
      mirrorId: options.mirrorId,
      kind: options.launch,
      overrides: options.overrides,
      release: options.release,
    });
  } else {
    mirror = resolveMirror(ctx.config, options.mirrorId, options.overrides);
    await enrollMirror(ctx, { mirrorId: mirror.mirrorId, credentialFile: options.credentialFile, primaryKeyFile: options.primaryKeyFile });
  }
  await waitCaughtUp(ctx, mirror, { primary, timeoutMs: options.timeoutMs, pollMs: options.pollMs });
  await registerInDns(ctx, mirror);
  return 0;
}
