import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fakeClientConfig, type Route53Fake } from '../../packages/dns/test/route53-fake/server.js';
import { BINS } from './daemon.js';

const execFileAsync = promisify(execFile);

export interface CliResult {
  /** The process exit code; -1 when it was killed (e.g. by the timeout). */
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `metasync` CLI to completion; a non-zero exit is a result, not a throw. */
export async function runCli(args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [BINS.cli, ...args], {
      env: { ...process.env, ...options.env },
      timeout: options.timeoutMs ?? 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

/**
 * The environment that points the CLI (or a self-registering mirror) at the
 * in-repo Route53 fake, with its credentials and short DNS waits. Without a
 * state file the caller's default (e.g. the mirror's data dir) applies.
 */
export function route53FakeEnv(
  fake: Route53Fake,
  options: { stateFile?: string; ttlS?: number; drainMarginMs?: number } = {},
): NodeJS.ProcessEnv {
  const credentials = fakeClientConfig(fake).credentials;
  return {
    METASYNC_DNS_PROVIDER: 'route53',
    METASYNC_ROUTE53_ZONE_ID: fake.zoneIds[0]!,
    METASYNC_ROUTE53_SERVICE_NAME: 'repo.example.com',
    METASYNC_ROUTE53_ENDPOINT: fake.url,
    ...(options.stateFile === undefined ? {} : { METASYNC_DNS_STATE_FILE: options.stateFile }),
    ...(options.ttlS === undefined ? {} : { METASYNC_DNS_TTL_S: String(options.ttlS) }),
    ...(options.drainMarginMs === undefined ? {} : { METASYNC_DNS_DRAIN_MARGIN_MS: String(options.drainMarginMs) }),
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_REGION: 'us-east-1',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}
