import { spawn, type ChildProcess } from 'node:child_process';
import { EC2Client } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isMetasyncError } from '@metasync/shared';
import type { Clock } from '@metasync/dns';
import { awsLaunchSchema, type AwsLaunchConfig } from '../src/launch/aws/aws-launch-config.js';
import { createLauncher } from '../src/launch/create-launcher.js';
import type { Launcher, LaunchSpec } from '../src/launch/launcher.js';
import { fakeEc2ClientConfig, startEc2Fake, type Ec2Fake, type Ec2FakeOptions, type ServedCall } from './ec2-fake/server.js';

/**
 * The aws launcher against the in-repo EC2 Query-API fake, driven by the real
 * @aws-sdk/client-ec2 over HTTP. Crashes are real where it matters: the
 * launch runs in a child process that is SIGKILLed at the chosen call, after
 * EC2 acted and before the process heard the answer.
 */
const RELEASE_SHA256 = 'ab'.repeat(32);
const config: AwsLaunchConfig = awsLaunchSchema.parse({
  regions: {
    'eu-west-1': {
      amiId: 'ami-0123456789abcdef0',
      instanceType: 't3.small',
      subnetId: 'subnet-0123456789abcdef0',
      securityGroupIds: ['sg-0123456789abcdef0'],
      instanceProfile: 'metasync-mirror',
    },
    'us-east-1': {
      amiId: 'ami-0fedcba9876543210',
      instanceType: 't3.micro',
      subnetId: 'subnet-0fedcba9876543210',
      securityGroupIds: ['sg-0fedcba9876543210', 'sg-0aaaaaaaaaaaaaaaa'],
      instanceProfile: 'arn:aws:iam::123456789012:instance-profile/metasync-mirror',
    },
  },
  releases: {
    '0.1.0': { url: 'https://releases.example.com/metasync-0.1.0.tar.gz', sha256: RELEASE_SHA256 },
    '0.2.0': { url: 'https://releases.example.com/metasync-0.2.0.tar.gz', sha256: 'cd'.repeat(32) },
  },
  acmeEmail: 'ops@example.com',
  hostedZoneId: 'Z0123456789',
  serviceName: 'repo.example.com',
  pollIntervalMs: 10,
  launchTimeoutMs: 60_000,
});
const spec: LaunchSpec = {
  mirrorId: 'eu-1',
  region: 'eu-west-1',
  releaseVersion: '0.1.0',
  primaryUrl: 'https://primary.repo.example.com',
  credential: 'msm_' + 'c'.repeat(43),
  primaryKey: '0123456789abcdef:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
};

/** Virtual time: sleeps return at once and move the clock; the fake's instances move with polls instead. */
function virtualClock(): Clock {
  let nowMs = 1_700_000_000_000;
  return {
    now: () => nowMs,
    sleep: (ms) => {
      nowMs += ms;
      return Promise.resolve();
    },
  };
}

/** A child loads tsx and the EC2 SDK from source: seconds on a loaded machine. */
const CHILD_TEST_TIMEOUT_MS = 90_000;
const CHILD = new URL('./helpers/aws-launch-child.ts', import.meta.url).pathname;

interface ChildRun {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>;
}

function startChild(fake: Ec2Fake, op: 'launch' | 'destroy', launchSpec: LaunchSpec = spec): ChildRun {
  const child = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', CHILD, JSON.stringify({ endpoint: fake.url, config, op, spec: launchSpec })],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } },
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, stdout: stdout + stderr }));
  });
  return { child, exited };
}

/** Runs the operation in a child and SIGKILLs it when the fake has served `action` (its nth time), before the answer goes out. */
async function crashChildAt(fake: Ec2Fake, op: 'launch' | 'destroy', at: { action: string; nth?: number }): Promise<string> {
  const run = startChild(fake, op);
  let seen = 0;
  let killed = false;
  fake.onServed(async (call: ServedCall) => {
    if (killed || call.action !== at.action || seen++ !== (at.nth ?? 0)) return 'respond';
    killed = true;
    run.child.kill('SIGKILL');
    await run.exited;
    return 'drop';
  });
  const result = await run.exited;
  fake.onServed(undefined);
  expect(result.signal, `the child should have been killed at ${at.action}; it printed:\n${result.stdout}`).toBe('SIGKILL');
  return result.stdout;
}

describe('aws launcher against the EC2 Query-API fake (real SDK over HTTP)', () => {
  let fake: Ec2Fake;
  const clients: EC2Client[] = [];
  const lines: string[] = [];

  const start = async (options: Ec2FakeOptions = {}): Promise<void> => {
    await fake.close();
    fake = await startEc2Fake({ instanceProfiles: ['metasync-mirror', config.regions['us-east-1']!.instanceProfile], ...options });
  };
  const launcherFor = (launchConfig: AwsLaunchConfig = config): Launcher =>
    createLauncher(
      'aws',
      { launch: { aws: launchConfig }, dns: { provider: 'none', ttlS: 60, drainMarginMs: 0 } },
      {
        clock: virtualClock(),
        clientFor: (region) => {
          const client = new EC2Client(fakeEc2ClientConfig(fake, region));
          clients.push(client);
          return client;
        },
      },
    ).launcher;
  const say = (line: string): void => {
    lines.push(line);
  };

  beforeEach(async () => {
    fake = await startEc2Fake({ instanceProfiles: ['metasync-mirror', config.regions['us-east-1']!.instanceProfile] });
    lines.length = 0;
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.destroy();
    await fake.close();
  });

  it('launches one tagged instance with the configured AMI, type, subnet, groups and profile, booted by the rendered cloud-init', async () => {
    const server = await launcherFor().launch(spec, say);
    const [instance, ...others] = fake.instances();
    expect(others).toEqual([]);
    expect(instance).toMatchObject({
      region: 'eu-west-1',
      imageId: 'ami-0123456789abcdef0',
      instanceType: 't3.small',
      subnetId: 'subnet-0123456789abcdef0',
      securityGroupIds: ['sg-0123456789abcdef0'],
      instanceProfile: 'metasync-mirror',
      associatePublicIp: true,
      state: 'running',
    });
    expect(Object.fromEntries(instance!.tags)).toMatchObject({
      'managed-by': 'metasync',
      'mirror-id': 'eu-1',
      'metasync:release': '0.1.0',
    });
    expect(instance!.userData).toContain(`echo "${RELEASE_SHA256}  /tmp/metasync.tar.gz" | sha256sum -c -;`);
    expect(instance!.userData).toContain('METASYNC_MIRROR_ID=eu-1\n');
    expect(instance!.userData).not.toContain('${');
    expect(server).toEqual({
      mirrorId: 'eu-1',
      region: 'eu-west-1',
      serverId: instance!.id,
      releaseVersion: '0.1.0',
      url: `https://${instance!.publicIp}`,
      healthUrl: `https://${instance!.publicIp}/health/fresh`,
      address: instance!.publicIp,
      state: 'running',
    });
    expect(lines.some((line) => line.includes('pending'))).toBe(true);
    expect(lines.at(-1)).toBe(`ec2 ${instance!.id}: running at ${instance!.publicIp}`);
    expect(await launcherFor().find('eu-1')).toEqual(server);
    expect(await launcherFor().list()).toEqual([server]);
    // A second launch finds it and creates nothing.
    const runs = fake.calls.filter((c) => c === 'RunInstances').length;
    expect(await launcherFor().launch(spec)).toEqual(server);
    expect(fake.calls.filter((c) => c === 'RunInstances').length).toBe(runs);
  });

  it('uses the region of the spec, with an instance profile given by ARN, and the private address when configured', async () => {
    const privateConfig = { ...config, addressType: 'private' as const };
    const server = await launcherFor(privateConfig).launch({ ...spec, mirrorId: 'us-1', region: 'us-east-1' });
    const instance = fake.instances()[0]!;
    expect(instance).toMatchObject({ region: 'us-east-1', instanceType: 't3.micro', associatePublicIp: false });
    expect(instance.publicIp).toBeUndefined();
    expect(instance.instanceProfile).toBe('arn:aws:iam::123456789012:instance-profile/metasync-mirror');
    expect(server.address).toBe(instance.privateIp);
    expect(await launcherFor().find('eu-1')).toBeUndefined();
    expect(await launcherFor().find('us-1')).toMatchObject({ region: 'us-east-1', serverId: instance.id });
    // The same mirror id is not launched a second time in another region.
    await expect(launcherFor().launch({ ...spec, mirrorId: 'us-1' })).rejects.toThrow(/already has i-\S+ in us-east-1, not eu-west-1/);
    expect(fake.instances()).toHaveLength(1);
  });

  it(
    'a CLI killed after RunInstances took effect, before it heard back: the rerun finds that instance, no second one',
    async () => {
      const printed = await crashChildAt(fake, 'launch', { action: 'RunInstances' });
      expect(printed).not.toContain('done');
      expect(fake.instances()).toHaveLength(1);
      const server = await launcherFor().launch(spec, say);
      expect(fake.instances()).toHaveLength(1);
      expect(server.serverId).toBe(fake.instances()[0]!.id);
      expect(server.state).toBe('running');
      expect(fake.calls.filter((c) => c === 'RunInstances')).toHaveLength(1);
      expect(lines[0]).toMatch(/found for eu-1 \(pending\), launched earlier/);
    },
    CHILD_TEST_TIMEOUT_MS,
  );

  it(
    'the same crash while DescribeInstances does not list the new instance yet: the same ClientToken returns the same reservation',
    async () => {
      await start({ invisibleToFiltersFor: 2 });
      await crashChildAt(fake, 'launch', { action: 'RunInstances' });
      const server = await launcherFor().launch(spec, say);
      expect(fake.calls.filter((c) => c === 'RunInstances')).toHaveLength(2);
      expect(fake.instances()).toHaveLength(1);
      expect(server.serverId).toBe(fake.instances()[0]!.id);
    },
    CHILD_TEST_TIMEOUT_MS,
  );

  it(
    'a CLI killed while waiting for the instance to run: the rerun finishes the wait on the same instance',
    async () => {
      await start({ runningAfterPolls: 4 });
      const printed = await crashChildAt(fake, 'launch', { action: 'DescribeInstances', nth: 2 });
      expect(printed).toMatch(/launched for eu-1/);
      const server = await launcherFor().launch(spec, say);
      expect(fake.instances()).toHaveLength(1);
      expect(fake.calls.filter((c) => c === 'RunInstances')).toHaveLength(1);
      expect(server).toMatchObject({ serverId: fake.instances()[0]!.id, state: 'running' });
    },
    CHILD_TEST_TIMEOUT_MS,
  );

  it('finishes a launch whose connection dropped after any call took effect, always with exactly one instance', async () => {
    await launcherFor().launch(spec);
    const steps = fake.calls.length;
    for (let k = 0; k < steps; k++) {
      await start();
      fake.onServed((call) => (call.index === k ? 'drop' : 'respond'));
      await expect(launcherFor().launch(spec), `drop at call ${k}`).rejects.toMatchObject({ code: 'METASYNC_ERR_EC2_CALL_FAILED' });
      fake.onServed(undefined);
      const server = await launcherFor().launch(spec);
      expect(fake.instances(), `drop at call ${k}`).toHaveLength(1);
      expect(server.serverId).toBe(fake.instances()[0]!.id);
    }
  });

  it('finishes a destroy whose connection dropped after any call took effect', async () => {
    await launcherFor().launch(spec);
    const before = fake.calls.length;
    await launcherFor().destroy('eu-1');
    const steps = fake.calls.length - before;
    for (let k = 0; k < steps; k++) {
      await start();
      await launcherFor().launch(spec);
      const first = fake.calls.length;
      fake.onServed((call) => (call.index === first + k ? 'drop' : 'respond'));
      await expect(launcherFor().destroy('eu-1'), `drop at destroy call ${k}`).rejects.toMatchObject({
        code: 'METASYNC_ERR_EC2_CALL_FAILED',
      });
      fake.onServed(undefined);
      await launcherFor().destroy('eu-1');
      expect(fake.liveInstances(), `drop at destroy call ${k}`).toEqual([]);
      expect(await launcherFor().find('eu-1')).toBeUndefined();
    }
  });

  it('through the endpoint override and the SDK retry: an answer lost after RunInstances is retried with the same ClientToken, one instance', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDFAKE');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'fake-secret');
    vi.stubEnv('AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED', 'true');
    const created = createLauncher('aws', {
      launch: { aws: { ...config, endpoint: fake.url } },
      dns: { provider: 'none', ttlS: 60, drainMarginMs: 0 },
    });
    try {
      fake.onServed((call) =>
        call.action === 'RunInstances' && fake.calls.filter((c) => c === 'RunInstances').length === 1 ? 'drop' : 'respond',
      );
      fake.inject({ action: 'DescribeInstances', code: 'RequestLimitExceeded', status: 503, times: 1 });
      const server = await created.launcher.launch(spec);
      expect(fake.calls.filter((c) => c === 'RunInstances')).toHaveLength(2);
      expect(fake.calls).toContain('DescribeInstances!RequestLimitExceeded');
      expect(fake.instances()).toHaveLength(1);
      expect(server.serverId).toBe(fake.instances()[0]!.id);
    } finally {
      created.close();
      vi.unstubAllEnvs();
    }
  });

  it('destroy terminates the instance and waits for it to shut down; a second destroy is a no-op', async () => {
    const server = await launcherFor().launch(spec);
    await launcherFor().destroy('eu-1', say);
    const instance = fake.instances()[0]!;
    expect(['shutting-down', 'terminated']).toContain(instance.state);
    expect(await launcherFor().find('eu-1')).toBeUndefined();
    expect(lines).toContain(`ec2 ${server.serverId}: terminating (eu-1)`);
    const terminates = fake.calls.filter((c) => c === 'TerminateInstances').length;
    await launcherFor().destroy('eu-1', say);
    await launcherFor().destroy('eu-1', say);
    expect(fake.calls.filter((c) => c === 'TerminateInstances').length).toBe(terminates);
    expect(fake.instances()).toHaveLength(1);
    await launcherFor().destroy('never-launched', say);
    expect(lines.at(-1)).toBe('ec2: no instance for never-launched; nothing to destroy');
  });

  it(
    'a CLI killed after TerminateInstances took effect: the rerun destroy finishes',
    async () => {
      await launcherFor().launch(spec);
      await crashChildAt(fake, 'destroy', { action: 'TerminateInstances' });
      expect(fake.liveInstances()).toEqual([]);
      await launcherFor().destroy('eu-1', say);
      expect(['shutting-down', 'terminated']).toContain(fake.instances()[0]!.state);
    },
    CHILD_TEST_TIMEOUT_MS,
  );

  it('launches again after a retire on the same release, past the ClientToken of the terminated instance', async () => {
    const first = await launcherFor().launch(spec);
    await launcherFor().destroy('eu-1');
    const second = await launcherFor().launch(spec, say);
    expect(second.serverId).not.toBe(first.serverId);
    expect(fake.liveInstances().map((i) => i.id)).toEqual([second.serverId]);
    expect(new Set(fake.instances().map((i) => i.clientToken)).size).toBe(2);
    // A third run reuses the second instance.
    expect((await launcherFor().launch(spec)).serverId).toBe(second.serverId);
  });

  it('refuses to adopt an instance of the mirror on another release, and creates nothing', async () => {
    await launcherFor().launch(spec);
    const err: unknown = await launcherFor()
      .launch({ ...spec, releaseVersion: '0.2.0' })
      .catch((e: unknown) => e);
    expect(isMetasyncError(err, 'METASYNC_ERR_EC2_CONFLICT')).toBe(true);
    expect((err as Error).message).toMatch(/already runs release 0\.1\.0/);
    expect(fake.instances()).toHaveLength(1);
  });

  it('reports an instance that terminates instead of running, with EC2 state reason', async () => {
    await start({
      failingImages: { 'ami-0123456789abcdef0': { code: 'Server.InsufficientInstanceCapacity', message: 'Insufficient capacity.' } },
    });
    const err: unknown = await launcherFor()
      .launch(spec)
      .catch((e: unknown) => e);
    expect(isMetasyncError(err, 'METASYNC_ERR_EC2_INSTANCE_FAILED')).toBe(true);
    expect((err as Error).message).toMatch(/terminated instead of running: Insufficient capacity/);
  });

  it('gives up waiting after launchTimeoutMs with METASYNC_ERR_CLI_TIMEOUT', async () => {
    await start({ runningAfterPolls: 1_000_000 });
    const err: unknown = await launcherFor({ ...config, launchTimeoutMs: 1_000, pollIntervalMs: 100 })
      .launch(spec)
      .catch((e: unknown) => e);
    expect(isMetasyncError(err, 'METASYNC_ERR_CLI_TIMEOUT')).toBe(true);
    expect(fake.calls.filter((c) => c === 'DescribeInstances').length).toBeLessThan(20);
  });

  it('refuses before any call: an unconfigured region or release, a missing credential', async () => {
    for (const [bad, pattern] of [
      [{ ...spec, region: 'ap-south-1' }, /no entry for region ap-south-1/],
      [{ ...spec, releaseVersion: '9.9.9' }, /no entry for release 9\.9\.9/],
      [{ ...spec, credential: undefined }, /needs its enrolment credential/],
    ] as const) {
      await expect(launcherFor().launch(bad)).rejects.toThrow(pattern);
    }
    expect(fake.calls).toEqual([]);
  });
});
