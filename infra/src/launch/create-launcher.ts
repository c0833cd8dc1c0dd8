import type { EC2Client } from '@aws-sdk/client-ec2';
import type { Clock } from '@metasync/dns';
import { metasyncError } from '@metasync/shared';
import type { CliConfig } from '../cli-config.js';
import type { LaunchSection } from './launch-config.js';
import { terraformNodeDefaults } from './aws/user-data.js';
import type { Launcher, LauncherKind } from './launcher.js';

/** What the aws launcher reads of the CLI config. */
export interface AwsLauncherConfig {
  launch: Pick<LaunchSection, 'aws'>;
  dns: CliConfig['dns'];
}

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
  config: AwsLauncherConfig,
  options: { clock?: Clock; clientFor?: (region: string) => EC2Client } = {},
): CreatedLauncher {
  if (kind === 'aws') return createAws(config, options);
  throw metasyncError('METASYNC_ERR_CLI_USAGE', `--launch ${kind}: not built here yet (only the aws launcher is)`, { kind });
}

function createAws(config: AwsLauncherConfig, options: { clock?: Clock; clientFor?: (region: string) => EC2Client }): CreatedLauncher {
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
  const node = aws.node ?? terraformNodeDefaults();
  /**
   * The EC2 SDK takes over a second to load; it is imported on the first call,
   * so CLI commands that build a launcher but never use it do not pay for it.
   */
  let loaded: Promise<Launcher> | undefined;
  const load = (): Promise<Launcher> =>
    (loaded ??= (async () => {
      const [{ EC2Client: Client }, { createAwsLauncher }] = await Promise.all([
        import('@aws-sdk/client-ec2'),
        import('./aws/aws-launcher.js'),
      ]);
      const clientFor =
        options.clientFor ??
        ((region: string): EC2Client => {
          let client = clients.get(region);
          if (client === undefined) {
            // The SDK's standard retry covers RequestLimitExceeded, 5xx and dropped connections.
            client = new Client({ region, maxAttempts: 5, ...(aws.endpoint === undefined ? {} : { endpoint: aws.endpoint }) });
            clients.set(region, client);
          }
          return client;
        });
      return createAwsLauncher({
        config: aws,
        dns: { hostedZoneId, serviceName },
        node,
        clientFor,
        ...(options.clock === undefined ? {} : { clock: options.clock }),
      });
    })());
  const launcher: Launcher = {
    kind: 'aws',
    launch: async (spec, progress) => (await load()).launch(spec, progress),
    find: async (mirrorId) => (await load()).find(mirrorId),
    list: async () => (await load()).list(),
    destroy: async (mirrorId, progress) => (await load()).destroy(mirrorId, progress),
  };
  return {
    launcher,
    close: () => {
      for (const client of clients.values()) client.destroy();
      clients.clear();
    },
  };
}
