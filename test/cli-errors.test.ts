import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from './helpers/cli.js';
import { startCluster, type Cluster } from './helpers/cluster.js';
import { BINS } from './helpers/daemon.js';
import { freePort } from './helpers/free-port.js';

/** A stack trace line, as Node prints them: a user error must never show one. */
const STACK_LINE = /\n\s+at /;

/** Runs the built mirror until it exits (config errors exit before it listens), bounded. */
function runMirror(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BINS.mirror, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

describe('the operator sees one clear line and the documented exit code for a user error (real primary)', { timeout: 90_000 }, () => {
  let cluster: Cluster;
  let dir: string;
  let deadUrl: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'metasync-cli-errors-'));
    cluster = await startCluster();
    await cluster.publish('acme/widget', '1.0.0');
    // A port nothing listens on (picked free, then left closed).
    deadUrl = `http://127.0.0.1:${await freePort()}`;
  });
  afterAll(async () => {
    await cluster?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('verify of an unreachable mirror exits 5 naming it, without a stack trace', async () => {
    const result = await runCli(['--primary', cluster.primary.url, 'verify', '--url', deadUrl]);
    expect(result.code, result.stderr).toBe(5);
    expect(result.stderr).toContain(`METASYNC_ERR_SYNC_UNREACHABLE: mirror ${deadUrl} cannot be reached`);
    expect(result.stderr).not.toMatch(STACK_LINE);
    expect(result.stdout).not.toContain('no differences');
  });

  it('mirrors list exits 5 when the primary cannot be asked, still printing what it knows', async () => {
    const result = await runCli(['--primary', deadUrl, 'mirrors', 'list']);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain(`warning: primary: GET ${deadUrl}/sync/v1/mirrors failed`);
    expect(result.stdout).toContain('mirror');
    const json = await runCli(['--primary', deadUrl, 'mirrors', 'list', '--json']);
    expect(json.code).toBe(5);
    const healthy = await runCli(['--primary', cluster.primary.url, 'mirrors', 'list']);
    expect(healthy.code, healthy.stderr).toBe(0);
  });

  it('a PowerDNS API key file that does not exist is a config error (exit 2) naming METASYNC_PDNS_API_KEY_FILE', async () => {
    const missing = join(dir, 'no-such-key');
    const result = await runCli(['--primary', cluster.primary.url, 'mirrors', 'list'], {
      env: {
        METASYNC_DNS_PROVIDER: 'powerdns',
        METASYNC_PDNS_API_URL: 'http://127.0.0.1:9',
        METASYNC_PDNS_API_KEY: '',
        METASYNC_PDNS_API_KEY_FILE: missing,
        METASYNC_CONFIG: await writeConfig({
          dns: { powerdns: { apiUrl: 'http://127.0.0.1:9', zone: 'example.test', serviceName: 'repo.example.test' } },
        }),
      },
    });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(`METASYNC_ERR_CONFIG_INVALID: METASYNC_PDNS_API_KEY_FILE ${missing}: ENOENT`);
    expect(result.stderr).not.toMatch(STACK_LINE);
  });

  it('a token file that does not exist is a config error naming its variable', async () => {
    const missing = join(dir, 'no-such-token');
    const result = await runCli(['--primary', cluster.primary.url, 'mirrors', 'list'], {
      env: { METASYNC_PRIMARY_TOKEN: '', METASYNC_PRIMARY_TOKEN_FILE: missing },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`METASYNC_ERR_CONFIG_INVALID: METASYNC_PRIMARY_TOKEN_FILE ${missing}: ENOENT`);
    expect(result.stderr).not.toMatch(STACK_LINE);
  });

  it('a mirror with a malformed, mismatched or unreadable pin or secret exits 2 with one CONFIG_INVALID line', async () => {
    const base = ['--primary', cluster.primary.url, '--listen', '127.0.0.1:0'];
    const pin = await cluster.keyArg();
    const [keyId, publicKey] = pin.split(':') as [string, string];
    const cases: { args: string[]; expected: string }[] = [
      { args: ['--primary-key', 'garbage'], expected: '--primary-key must be <16 hex keyId>:<43 char base64url key>, got "garbage"' },
      {
        args: ['--primary-key', `${keyId.replace(/^./, (c) => (c === '0' ? '1' : '0'))}:${publicKey}`],
        expected: 'does not match its key',
      },
      { args: ['--primary-key-file', join(dir, 'no-such-pin')], expected: `--primary-key-file ${join(dir, 'no-such-pin')}: ENOENT` },
      {
        args: ['--primary-key', pin, '--admin-token-file', join(dir, 'no-such-admin-token')],
        expected: `--admin-token-file ${join(dir, 'no-such-admin-token')}: ENOENT`,
      },
    ];
    for (const [i, c] of cases.entries()) {
      const result = await runMirror([...base, '--data', join(dir, `mirror-${i}`), ...c.args]);
      expect(result.code, `${c.args.join(' ')}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toContain('METASYNC_ERR_CONFIG_INVALID');
      expect(result.stderr).toContain(c.expected);
      expect(result.stderr).not.toMatch(STACK_LINE);
    }
  });

  async function writeConfig(config: unknown): Promise<string> {
    const path = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(path, JSON.stringify(config));
    return path;
  }
});
