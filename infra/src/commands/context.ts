import { isIP } from 'node:net';
import { metasyncError } from '@metasync/shared';
import type { CliConfig, MirrorConfig } from '../cli-config.js';
import type { Clock } from '@metasync/dns';
import { joinUrl } from '../remote.js';

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Where progress bars draw; only used when it is a TTY. */
  progressStream: NodeJS.WritableStream & { isTTY?: boolean };
}

export interface CommandContext {
  config: CliConfig;
  io: Io;
  clock: Clock;
}

export interface ResolvedMirror extends MirrorConfig {
  mirrorId: string;
  address: string;
  healthUrl: string;
}

export function requirePrimary(config: CliConfig): string {
  if (config.primary === undefined)
    throw metasyncError(
      'METASYNC_ERR_CLI_USAGE',
      'no primary URL: pass --primary or set METASYNC_PRIMARY (or "primary" in the config file)',
      {},
    );
  return config.primary;
}

/** A mirror from the config file, with flags filling in or overriding its fields. */
export function resolveMirror(config: CliConfig, mirrorId: string, overrides: Partial<MirrorConfig>): ResolvedMirror {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Partial<MirrorConfig>;
  const merged = { ...config.mirrors[mirrorId], ...defined };
  if (merged.url === undefined || merged.region === undefined) {
    throw metasyncError('METASYNC_ERR_CLI_USAGE', `mirror ${mirrorId} is not in the config file: pass --url and --region`, { mirrorId });
  }
  const host = new URL(merged.url).hostname.replace(/^\[(.*)\]$/, '$1');
  const address = merged.address ?? (isIP(host) === 0 ? undefined : host);
  if (address === undefined) {
    throw metasyncError(
      'METASYNC_ERR_CLI_USAGE',
      `mirror ${mirrorId}: the DNS address is unknown (its URL host ${host} is not an IP): pass --address`,
      { mirrorId },
    );
  }
  return {
    ...merged,
    url: merged.url,
    region: merged.region,
    mirrorId,
    address,
    healthUrl: merged.healthUrl ?? joinUrl(merged.url, '/health/fresh'),
  };
}
