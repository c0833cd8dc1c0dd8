import { RunInstancesCommand, TerminateInstancesCommand, type EC2Client, type Instance } from '@aws-sdk/client-ec2';
import { systemClock, type Clock } from '@metasync/dns';
import { metasyncError } from '@metasync/shared';
import type { LaunchedServer, Launcher, LaunchProgress, LaunchSpec } from '../launcher.js';
import type { AwsLaunchConfig, AwsRegionLaunchConfig } from './aws-launch-config.js';
import { deriveClientToken } from './client-token.js';
import { awsErrorName, ec2Call } from './ec2-call.js';
import { describeInstances, LIVE_STATES, managedFilters, NOT_TERMINATED_STATES, TAGS, tagOf, toLaunchedServer } from './instances.js';
import { runInstancesInput } from './run-input.js';
import { encodeUserData, renderCloudInit } from './user-data.js';
import { GONE_STATES, waitRunning, waitShuttingDown, type WaitContext } from './wait-instance.js';

/**
 * `--launch aws`: one EC2 instance per mirror, booted by the cloud-init
 * template as user data.
 *
 *   launch:  find (tags) --found--> wait running + address --> server
 *              | none                 ^
 *              v                      |
 *            RunInstances(ClientToken = f(mirror id, release, attempt))
 *
 * Nothing is recorded locally: the instance's tags (set atomically by
 * RunInstances) and the deterministic ClientToken are the state. A crash
 * after RunInstances leaves a tagged instance the rerun finds; were it not yet
 * visible to DescribeInstances, the same token makes EC2 answer with the same
 * reservation. Either way there is never a second instance.
 */
export interface AwsLauncherOptions {
  config: AwsLaunchConfig;
  /** The zone and name the mirror registers itself under (cloud-init's DNS settings). */
  dns: { hostedZoneId: string; serviceName: string };
  /** The Node the instance installs. */
  node: { version: string; sha512: string };
  /** One EC2 client per AWS region. */
  clientFor: (region: string) => EC2Client;
  clock?: Clock;
}

/** Tokens whose instance was terminated are skipped (client-token.ts); more than this many retires of one mirror on one release within EC2's token memory is not expected. */
const MAX_TOKEN_ATTEMPTS = 16;

export function createAwsLauncher(options: AwsLauncherOptions): Launcher {
  const { config } = options;
  const clock = options.clock ?? systemClock;
  const regions = Object.keys(config.regions);
  const serverOf = (instance: Instance, region: string): LaunchedServer =>
    toLaunchedServer(instance, { region, addressType: config.addressType });
  const waitContext = (region: string, say: LaunchProgress): WaitContext => ({
    client: options.clientFor(region),
    region,
    addressType: config.addressType,
    timeoutMs: config.launchTimeoutMs,
    pollIntervalMs: config.pollIntervalMs,
    clock,
    say,
  });

  const regionConfig = (region: string): AwsRegionLaunchConfig => {
    const found = config.regions[region];
    if (found === undefined) {
      throw metasyncError(
        'METASYNC_ERR_CONFIG_INVALID',
        `launch.aws.regions has no entry for region ${region} (configured: ${regions.join(', ') || 'none'})`,
        { region },
      );
    }
    return found;
  };

  const liveInstances = (region: string, mirrorId: string | undefined): Promise<Instance[]> =>
    describeInstances(options.clientFor(region), {
      filters: managedFilters({ mirrorId, states: LIVE_STATES }),
      what: mirrorId === undefined ? 'managed instances' : `instances of mirror ${mirrorId}`,
      region,
    });

  /** The one live instance of the mirror in the region, refusing what launch() must not adopt. */
  const existingInstance = async (spec: LaunchSpec): Promise<Instance | undefined> => {
    // A mirror id names one server fleet-wide: one in another region is not launched twice either.
    const elsewhere = regions.filter((region) => region !== spec.region);
    const foreign = (
      await Promise.all(elsewhere.map(async (region) => ({ region, found: await liveInstances(region, spec.mirrorId) })))
    ).find((entry) => entry.found.length > 0);
    if (foreign !== undefined) {
      throw metasyncError(
        'METASYNC_ERR_EC2_CONFLICT',
        `mirror ${spec.mirrorId} already has ${foreign.found[0]!.InstanceId} in ${foreign.region}, not ${spec.region}; retire it first, or launch under another mirror id`,
        { mirrorId: spec.mirrorId, region: spec.region, otherRegion: foreign.region, instanceId: foreign.found[0]!.InstanceId },
      );
    }
    const found = await liveInstances(spec.region, spec.mirrorId);
    if (found.length > 1) {
      throw metasyncError(
        'METASYNC_ERR_EC2_CONFLICT',
        `${found.length} instances are tagged mirror-id=${spec.mirrorId} in ${spec.region}: ${found.map((i) => i.InstanceId).join(', ')}; terminate the extra ones`,
        { mirrorId: spec.mirrorId, region: spec.region, instanceIds: found.map((i) => i.InstanceId) },
      );
    }
    const instance = found[0];
    const release = instance === undefined ? undefined : tagOf(instance, TAGS.release);
    if (instance !== undefined && release !== spec.releaseVersion) {
      throw metasyncError(
        'METASYNC_ERR_EC2_CONFLICT',
        `mirror ${spec.mirrorId} already runs release ${release ?? '(untagged)'} on ${instance.InstanceId}, not ${spec.releaseVersion}; servers are immutable: retire it first, or launch under another mirror id`,
        { mirrorId: spec.mirrorId, region: spec.region, instanceId: instance.InstanceId, release, wanted: spec.releaseVersion },
      );
    }
    return instance;
  };

  /** RunInstances under the first token of this mirror and release whose instance is not gone. */
  const runInstance = async (spec: LaunchSpec, userData: string, say: LaunchProgress): Promise<Instance> => {
    const client = options.clientFor(spec.region);
    for (let attempt = 0; attempt < MAX_TOKEN_ATTEMPTS; attempt++) {
      const clientToken = deriveClientToken({ mirrorId: spec.mirrorId, releaseVersion: spec.releaseVersion, attempt });
      const details = { mirrorId: spec.mirrorId, region: spec.region, clientToken };
      let instance: Instance | undefined;
      try {
        const out = await ec2Call(
          { what: `RunInstances for mirror ${spec.mirrorId}`, details, passThrough: ['IdempotentParameterMismatch'] },
          () =>
            client.send(
              new RunInstancesCommand(
                runInstancesInput({ spec, region: regionConfig(spec.region), addressType: config.addressType, userData, clientToken }),
              ),
            ),
        );
        instance = out.Instances?.[0];
      } catch (err) {
        if (awsErrorName(err) !== 'IdempotentParameterMismatch') throw err;
        // The token was used with other parameters (e.g. a credential issued since): its instance decides.
        instance = (
          await describeInstances(client, {
            filters: [{ Name: 'client-token', Values: [clientToken] }],
            what: `client token ${clientToken}`,
            region: spec.region,
          })
        )[0];
        if (instance === undefined || !GONE_STATES.has(instance.State?.Name ?? '')) {
          throw metasyncError(
            'METASYNC_ERR_EC2_CONFLICT',
            `RunInstances for mirror ${spec.mirrorId}: client token ${clientToken} was used with other parameters for ${instance?.InstanceId ?? 'an instance not visible yet'}; rerun once it shows up, or retire it`,
            { ...details, instanceId: instance?.InstanceId },
            err,
          );
        }
      }
      if (instance?.InstanceId === undefined) {
        throw metasyncError(
          'METASYNC_ERR_EC2_CALL_FAILED',
          `RunInstances for mirror ${spec.mirrorId} answered without an instance`,
          details,
        );
      }
      if (GONE_STATES.has(instance.State?.Name ?? '')) {
        say(`ec2 ${instance.InstanceId}: ${instance.State?.Name} (an earlier launch of ${spec.mirrorId}); next client token`);
        continue;
      }
      say(`ec2 ${instance.InstanceId}: launched for ${spec.mirrorId} (${instance.State?.Name ?? 'pending'})`);
      return instance;
    }
    throw metasyncError(
      'METASYNC_ERR_EC2_CONFLICT',
      `mirror ${spec.mirrorId} on release ${spec.releaseVersion}: the first ${MAX_TOKEN_ATTEMPTS} client tokens all belong to terminated instances`,
      { mirrorId: spec.mirrorId, region: spec.region },
    );
  };

  return {
    kind: 'aws',

    async launch(spec, progress) {
      const say = progress ?? (() => undefined);
      regionConfig(spec.region);
      const release = config.releases[spec.releaseVersion];
      if (release === undefined) {
        throw metasyncError(
          'METASYNC_ERR_CONFIG_INVALID',
          `launch.aws.releases has no entry for release ${spec.releaseVersion} (its artifact URL and sha256)`,
          { releaseVersion: spec.releaseVersion },
        );
      }
      if (spec.credential === undefined || spec.primaryKey === undefined) {
        throw metasyncError(
          'METASYNC_ERR_CONFIG_INVALID',
          `an aws mirror needs its enrolment credential and the primary's key in its user data (mirror ${spec.mirrorId})`,
          { mirrorId: spec.mirrorId, missing: spec.credential === undefined ? 'credential' : 'primaryKey' },
        );
      }
      // Rendered and size-checked before any call: bad input creates nothing.
      const userData = encodeUserData(
        renderCloudInit({
          mirror_id: spec.mirrorId,
          region: spec.region,
          primary_url: spec.primaryUrl,
          primary_key: spec.primaryKey,
          mirror_credential: spec.credential,
          release_url: release.url,
          release_sha256: release.sha256,
          node_version: options.node.version,
          node_sha512: options.node.sha512,
          route53_zone_id: options.dns.hostedZoneId,
          service_name: options.dns.serviceName,
          acme_email: config.acmeEmail,
        }),
      );
      const existing = await existingInstance(spec);
      if (existing !== undefined) say(`ec2 ${existing.InstanceId}: found for ${spec.mirrorId} (${existing.State?.Name}), launched earlier`);
      const instance = existing ?? (await runInstance(spec, userData, say));
      return waitRunning(waitContext(spec.region, say), instance.InstanceId!);
    },

    async find(mirrorId) {
      for (const region of regions) {
        const instance = (await liveInstances(region, mirrorId))[0];
        if (instance !== undefined) return serverOf(instance, region);
      }
      return undefined;
    },

    async list() {
      const perRegion = await Promise.all(
        regions.map(async (region) => (await liveInstances(region, undefined)).map((instance) => serverOf(instance, region))),
      );
      return perRegion.flat();
    },

    async destroy(mirrorId, progress) {
      const say = progress ?? (() => undefined);
      let seen = 0;
      for (const region of regions) {
        const client = options.clientFor(region);
        const instances = await describeInstances(client, {
          filters: managedFilters({ mirrorId, states: NOT_TERMINATED_STATES }),
          what: `instances of mirror ${mirrorId}`,
          region,
        });
        if (instances.length === 0) continue;
        seen += instances.length;
        const ids = instances.map((instance) => instance.InstanceId!);
        const toTerminate = instances
          .filter((instance) => instance.State?.Name !== 'shutting-down')
          .map((instance) => instance.InstanceId!);
        if (toTerminate.length > 0) {
          // TerminateInstances is idempotent in EC2: a second call on a terminating instance changes nothing.
          await ec2Call(
            { what: `TerminateInstances for mirror ${mirrorId}`, details: { mirrorId, region, instanceIds: toTerminate } },
            () => client.send(new TerminateInstancesCommand({ InstanceIds: toTerminate })),
          );
          say(`ec2 ${toTerminate.join(', ')}: terminating (${mirrorId})`);
        }
        await waitShuttingDown(waitContext(region, say), ids);
        say(`ec2 ${ids.join(', ')}: shutting down (${mirrorId})`);
      }
      if (seen === 0) say(`ec2: no instance for ${mirrorId}; nothing to destroy`);
    },
  };
}
