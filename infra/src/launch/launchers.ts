import { metasyncError } from '@metasync/shared';
import type { Clock } from '@metasync/dns';
import type { CliConfig, MirrorConfig } from '../cli-config.js';
import { createLauncher as createAwsOrOtherLauncher } from './create-launcher.js';
import type { Launcher, LauncherKind } from './launcher.js';
import { createLocalLauncher } from './local.js';

/** The launcher of a kind, configured from the CLI config. */
export function createLauncher(kind: LauncherKind, config: CliConfig, clock: Clock): Launcher {
  if (kind === 'local') {
    const local = config.launch.local;
    return createLocalLauncher({
      dir: config.launchLocalDir,
      releases: local.releases,
      addresses: local.addresses,
      mirrorArgs: local.mirrorArgs,
      adminToken: config.adminToken,
      clock,
    });
  }
  if (kind === 'aws') return closingAfterEachCall(createAwsOrOtherLauncher('aws', config, { clock }));
  throw metasyncError('METASYNC_ERR_CLI_USAGE', `launcher ${kind} is not available in this build`, { kind });
}

/**
 * The aws launcher holds SDK clients with keep-alive sockets, which would keep
 * the CLI process alive after its command; each call releases them when done
 * (the next call makes new ones).
 */
function closingAfterEachCall(created: { launcher: Launcher; close(): void }): Launcher {
  const { launcher, close } = created;
  const closing =
    <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await call(...args);
      } finally {
        close();
      }
    };
  return {
    kind: launcher.kind,
    launch: closing(launcher.launch),
    find: closing(launcher.find),
    list: closing(launcher.list),
    destroy: closing(launcher.destroy),
  };
}

/**
 * The config's mirrors plus every mirror the local launcher has a record of:
 * a launched mirror needs no config entry for retire, list, verify or roll to
 * find it. A config entry of the same id wins field by field, and is marked
 * as launched so retire destroys the server.
 */
export async function withLaunchedMirrors(config: CliConfig, clock: Clock): Promise<CliConfig> {
  const launched = await createLauncher('local', config, clock).list();
  if (launched.length === 0) return config;
  const mirrors: Record<string, MirrorConfig> = { ...config.mirrors };
  for (const server of launched) {
    mirrors[server.mirrorId] = {
      url: server.url,
      region: server.region,
      address: server.address,
      healthUrl: server.healthUrl,
      ...config.mirrors[server.mirrorId],
      launcher: 'local',
    };
  }
  return { ...config, mirrors };
}
