/**
 * A separate process running one aws launcher operation against the EC2
 * fake, so a test can SIGKILL it at an exact step (a real crash of the CLI)
 * and then rerun the operation. Run with
 * `node --conditions=source --import tsx aws-launch-child.ts '<json>'`.
 * Prints each progress line, then `done <json result>`.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { createLauncher } from '../../src/launch/create-launcher.js';
import type { AwsLaunchConfig } from '../../src/launch/aws/aws-launch-config.js';
import type { LaunchSpec } from '../../src/launch/launcher.js';

interface ChildInput {
  endpoint: string;
  config: AwsLaunchConfig;
  op: 'launch' | 'destroy';
  spec: LaunchSpec;
}

const input = JSON.parse(process.argv[2] ?? '{}') as ChildInput;
const { launcher, close } = createLauncher(
  'aws',
  { launch: { aws: input.config }, dns: { provider: 'none', ttlS: 60, drainMarginMs: 0 } },
  {
    clientFor: (region) =>
      new EC2Client({
        endpoint: input.endpoint,
        region,
        credentials: { accessKeyId: 'AKIDFAKE', secretAccessKey: 'fake-secret' },
        maxAttempts: 1,
      }),
  },
);
const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
const result = input.op === 'launch' ? await launcher.launch(input.spec, say) : await launcher.destroy(input.spec.mirrorId, say);
close();
process.stdout.write(`done ${JSON.stringify(result ?? null)}\n`, () => process.exit(0));
