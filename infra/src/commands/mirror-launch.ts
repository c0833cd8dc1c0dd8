import { metasyncError } from '@metasync/shared';
import type { MirrorConfig } from '../cli-config.js';
import { createLauncher } from '../launch/launchers.js';
import type { LauncherKind } from '../launch/launcher.js';
import { ownVersion } from '../launch/release-root.js';
import { fetchPrimaryState, issueMirrorCredential } from '../remote.js';
import { requirePrimary, type CommandContext, type ResolvedMirror } from './context.js';
import { requirePrimaryToken } from './enroll.js';
import { pinFor } from './keys.js';

/**
 * Creates the server of a mirror with a launcher: enrolls the id on the primary
 * (a new credential, handed to the server and never printed), pins the primary's
 * active key, and launches. A server already running this release for the id
 * is reused as it is: re-enrolling would replace the credential it acks with.
 */
export async function launchMirror(
  ctx: CommandContext,
  options: { mirrorId: string; kind: LauncherKind; overrides: Partial<MirrorConfig>; release?: string | undefined },
): Promise<ResolvedMirror> {
  const primary = requirePrimary(ctx.config);
  const region = options.overrides.region ?? ctx.config.mirrors[options.mirrorId]?.region;
  if (region === undefined)
    throw metasyncError('METASYNC_ERR_CLI_USAGE', `mirror up --launch ${options.kind} needs --region for ${options.mirrorId}`, {
      mirrorId: options.mirrorId,
    });
  const releaseVersion = options.release ?? ownVersion();
  const launcher = createLauncher(options.kind, ctx.config, ctx.clock);
  const existing = await launcher.find(options.mirrorId);
  let server;
  if (existing?.state === 'running' && existing.releaseVersion === releaseVersion) {
    ctx.io.err(`${options.mirrorId} already runs (${options.kind} ${existing.serverId}, release ${releaseVersion}, ${existing.url})`);
    server = existing;
  } else {
    const token = requirePrimaryToken(ctx.config, `mirror up --launch ${options.kind} (it enrolls the mirror)`);
    const active = (await fetchPrimaryState(primary)).keys.find((key) => key.active);
    if (active === undefined) throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `${primary} lists no active signing key`, { primary });
    const { credential } = await issueMirrorCredential({ primary, token, mirrorId: options.mirrorId });
    ctx.io.err(`${options.mirrorId} enrolled; pinning key ${active.keyId}`);
    server = await launcher.launch(
      { mirrorId: options.mirrorId, region, releaseVersion, primaryUrl: primary, credential, primaryKey: pinFor(active) },
      (line) => ctx.io.err(line),
    );
  }
  return {
    mirrorId: options.mirrorId,
    url: server.url,
    region: server.region,
    address: options.overrides.address ?? server.address,
    healthUrl: server.healthUrl,
    launcher: options.kind,
  };
}
