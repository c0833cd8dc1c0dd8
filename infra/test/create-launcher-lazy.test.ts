import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../test/helpers/daemon.js';

const execFileAsync = promisify(execFile);

/**
 * The EC2 SDK costs over a second to load; a CLI command that builds a launcher
 * must not pay for it until it calls one. Checked on the built dist/ with a
 * resolve hook recording every import of the SDK.
 */
const PROBE = `
import { registerHooks } from 'node:module';
const seen = [];
registerHooks({ resolve(specifier, context, next) { if (specifier.includes('client-ec2')) seen.push(specifier); return next(specifier, context); } });
const { createLauncher } = await import(process.argv[1]);
const { launcher, close } = createLauncher('aws', JSON.parse(process.argv[2]));
const atCreate = seen.length;
await launcher.find('nobody').catch(() => undefined);
close();
process.stdout.write(JSON.stringify({ atCreate, afterCall: seen.length }));
`;

describe('createLauncher (built)', () => {
  it('loads the EC2 SDK on the first launcher call, not when the launcher is created', async () => {
    const config = {
      launch: {
        aws: {
          regions: {},
          releases: {},
          acmeEmail: 'ops@example.com',
          addressType: 'public',
          launchTimeoutMs: 1_000,
          pollIntervalMs: 10,
          hostedZoneId: 'Z0123',
          serviceName: 'repo.example.com',
        },
      },
      dns: { provider: 'none' },
    };
    const { stdout } = await execFileAsync(
      process.execPath,
      ['--input-type=module', '-e', PROBE, join(REPO_ROOT, 'infra/dist/launch/create-launcher.js'), JSON.stringify(config)],
      { timeout: 60_000 },
    );
    const { atCreate, afterCall } = JSON.parse(stdout) as { atCreate: number; afterCall: number };
    expect(atCreate).toBe(0);
    expect(afterCall).toBeGreaterThan(0);
  }, 90_000);
});
