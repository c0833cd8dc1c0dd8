import { EC2Client } from '@aws-sdk/client-ec2';
import type { Clock } from '@metasync/dns';
import { metasyncError } from '@metasync/shared';
import type { CliConfig } from '../cli-config.js';
import { createAwsLauncher } from './aws/aws-launcher.js';
import { terraformNodeDefaults } from './aws/user-data.js';
import type { Launcher, LauncherKind } from './launcher.js';

export interface CreatedLauncher {
  launcher: Launcher;
  /** Releases the provider's clients (sockets); call once the command is done. */
  close(): void;
}

/**
 * The launcher `mirror up --launch <kind>`, `mirror retire` and `mirrors roll`
 * use, built from the CLI config's `launch.<kind>` section. Config problems
 * surface here, before anything is created.
 */
export function createLauncher(
  kind: LauncherKind,
  config: Pick<CliConfig, 'launch' | 'dns'>,
  options: { clock?: Clock; clientFor?: (region: string) => EC2Client } = {},
): CreatedLauncher {
  if (kind === 'aws') return createAws(config, options);
  throw metasyncError('METASYNC_ERR_CLI_USAGE', `--launch ${kind}: not built here yet (only the aws launcher is)`, { kind });
}

function createAws(
  config: Pick<CliConfig, 'launch' | 'dns'>,
  options: { clock?: Clock; clientFor?: (region: string) => EC2Client },
): CreatedLauncher {
  const aws = config.launch.aws;
  if (aws === undefined) {
    throw metasyncError(
      'METASYNC_ERR_CONFIG_INVALID',
      '--launch aws needs a launch.aws section in the config file (docs/operations.md, "Launching on AWS")',
      {},
    );
  }
  const hostedZoneId = aws.hostedZoneId ?? config.dns.route53?.hostedZoneId;
  const serviceName = aws.serviceName ?? config.dns.route53?.serviceName;
  if (hostedZoneId === undefined || serviceName === undefined) {
    throw metasyncError(
      'METASYNC_ERR_CONFIG_INVALID',
      '--launch aws: the mirror registers itself in Route53; set launch.aws.hostedZoneId and serviceName (or dns.route53)',
      {},
    );
  }
  const clients = new Map<string, EC2Client>();
  const clientFor =
    options.clientFor ??
    ((region: string): EC2Client => {
      let client = clients.get(region);
      if (client === undefined) {
        // The SDK's standard retry covers RequestLimitExceeded, 5xx and dropped connections.
        client = new EC2Client({ region, maxAttempts: 5, ...(aws.endpoint === undefined ? {} : { endpoint: aws.endpoint }) });
        clients.set(region, client);
      }
      return client;
    });
  const launcher = createAwsLauncher({
    config: aws,
    dns: { hostedZoneId, serviceName },
    node: aws.node ?? terraformNodeDefaults(),
    clientFor,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
  return {
    launcher,
    close: () => {
      for (const client of clients.values()) client.destroy();
      clients.clear();
    },
  };
}
