import type { EC2Client, Instance } from '@aws-sdk/client-ec2';
import type { Clock } from '@metasync/dns';
import { metasyncError } from '@metasync/shared';
import type { LaunchedServer, LaunchProgress } from '../launcher.js';
import { awsErrorName } from './ec2-call.js';
import { addressOf, describeInstances, toLaunchedServer } from './instances.js';

/** The bounded polls of a launch and a destroy: DescribeInstances every pollIntervalMs, a progress line per change. */
export interface WaitContext {
  client: EC2Client;
  region: string;
  addressType: 'public' | 'private';
  timeoutMs: number;
  pollIntervalMs: number;
  clock: Clock;
  say: LaunchProgress;
}

/** States an instance does not come back from. */
export const GONE_STATES: ReadonlySet<string> = new Set(['shutting-down', 'terminated']);

/** Polls until the instance runs and has the address DNS needs; bounded by launchTimeoutMs. */
export async function waitRunning(context: WaitContext, instanceId: string): Promise<LaunchedServer> {
  const { client, region, clock, say } = context;
  const startMs = clock.now();
  const deadlineMs = startMs + context.timeoutMs;
  let lastLine = '';
  for (;;) {
    let instance: Instance | undefined;
    try {
      instance = (
        await describeInstances(client, {
          instanceIds: [instanceId],
          what: instanceId,
          region,
          passThrough: ['InvalidInstanceID.NotFound'],
        })
      )[0];
    } catch (err) {
      // DescribeInstances is eventually consistent: a new instance can be unknown for a moment.
      if (awsErrorName(err) !== 'InvalidInstanceID.NotFound') throw err;
    }
    const state = instance?.State?.Name ?? 'not visible yet';
    if (instance !== undefined && (GONE_STATES.has(state) || state === 'stopped' || state === 'stopping')) {
      throw metasyncError(
        'METASYNC_ERR_EC2_INSTANCE_FAILED',
        `ec2 ${instanceId} is ${state} instead of running: ${instance.StateReason?.Message ?? 'no reason given'}`,
        { region, instanceId, state, reason: instance.StateReason?.Code },
      );
    }
    if (instance !== undefined && state === 'running' && addressOf(instance, context.addressType) !== '') {
      const server = toLaunchedServer(instance, { region, addressType: context.addressType });
      say(`ec2 ${instanceId}: running at ${server.address}`);
      return server;
    }
    const line = `ec2 ${instanceId}: ${state}${state === 'running' ? `, waiting for its ${context.addressType} address` : ''}`;
    if (line !== lastLine) say(`${line} (${Math.round((clock.now() - startMs) / 1000)} s)`);
    lastLine = line;
    const leftMs = deadlineMs - clock.now();
    if (leftMs <= 0) {
      throw metasyncError(
        'METASYNC_ERR_CLI_TIMEOUT',
        `ec2 ${instanceId} was not running with a ${context.addressType} address within ${context.timeoutMs} ms (last: ${state})`,
        { region, instanceId, state, timeoutMs: context.timeoutMs },
      );
    }
    await clock.sleep(Math.min(context.pollIntervalMs, leftMs));
  }
}

/** Waits until none of the instances is still pending/running/stopping/stopped. */
export async function waitShuttingDown(context: WaitContext, instanceIds: string[]): Promise<void> {
  const { client, region, clock, say } = context;
  const deadlineMs = clock.now() + context.timeoutMs;
  for (;;) {
    const left = (await describeInstances(client, { instanceIds, what: instanceIds.join(','), region })).filter(
      (instance) => !GONE_STATES.has(instance.State?.Name ?? ''),
    );
    if (left.length === 0) return;
    const leftMs = deadlineMs - clock.now();
    if (leftMs <= 0) {
      throw metasyncError(
        'METASYNC_ERR_CLI_TIMEOUT',
        `ec2 ${left.map((i) => `${i.InstanceId} (${i.State?.Name})`).join(', ')} still not shutting down after ${context.timeoutMs} ms`,
        { region, instanceIds: left.map((i) => i.InstanceId), timeoutMs: context.timeoutMs },
      );
    }
    say(`ec2 ${left.map((i) => `${i.InstanceId}: ${i.State?.Name}`).join(', ')}; waiting for shutting-down`);
    await clock.sleep(Math.min(context.pollIntervalMs, leftMs));
  }
}
