import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveWithComposer } from './helpers/composer-client.js';
import { REPO_ROOT } from './helpers/daemon.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * The README's first command runs scripts/demo.ts: this runs it for real and
 * follows its printed instructions (Composer against a mirror, the curl publish).
 */
const children: ReturnType<typeof spawn>[] = [];

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  }
});

describe('demo (the README main job)', () => {
  it('starts a primary and two mirrors whose printed URLs serve Composer and follow a publish', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'scripts/demo.ts'), '--exit-after-ms', '40000'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    await waitFor(() => output.includes('Ctrl-C stops everything'), {
      timeoutMs: 30_000,
      what: `the demo banner; output so far: ${output}`,
    });

    const mirrorUrls = [...output.matchAll(/mirror {4}(http:\/\/127\.0\.0\.1:\d+)/g)].map((m) => m[1]!);
    expect(mirrorUrls).toHaveLength(2);
    const resolved = await resolveWithComposer({ repoUrl: mirrorUrls[0]!, require: { 'acme/greeter': '^2.0' } });
    expect(resolved.packages.map((p) => `${p.name}@${p.version}`).sort()).toEqual(['acme/greeter@2.0.0', 'acme/hello@1.1.0']);

    // Follow the printed publish instructions, then see it on the other mirror.
    const curl = /curl -X POST (\S+) \\\n\s+-H 'authorization: Bearer (\w+)' -H 'content-type: application\/json' \\\n\s+-d '([^']+)'/.exec(
      output,
    );
    expect(curl, 'the banner shows how to publish').not.toBeNull();
    const [, publishUrl, token, body] = curl!;
    const published = await fetch(publishUrl!, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body,
    });
    expect(published.status).toBeLessThan(300);
    await waitFor(async () => (await (await fetch(`${mirrorUrls[1]}/p2/acme/hello.json`)).text()).includes('1.2.0'), {
      timeoutMs: 5_000,
      what: 'the new version on the second mirror',
    });
  }, 90_000);
});
