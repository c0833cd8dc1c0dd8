import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from './wait-for.js';
import { freePort } from './free-port.js';

const execFileAsync = promisify(execFile);

export const PDNS_BIN = '/usr/sbin/pdns_server';
/** Debian's pdns-backend-sqlite3 ships the schema in both places, depending on the version. */
const SCHEMA_CANDIDATES = [
  '/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql',
  '/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql',
];

export interface Pdns {
  dnsPort: number;
  apiUrl: string;
  apiKey: string;
  /** Creates a Native zone with an SOA and NS, via the HTTP API. */
  createZone(name: string): Promise<void>;
  /** `dig +short` answers (A/AAAA values), optionally with an EDNS client subnet. */
  dig(name: string, options?: { subnet?: string; type?: 'A' | 'AAAA' }): Promise<string[]>;
  stop(): Promise<void>;
  logs(): string;
}

/**
 * Starts Debian's pdns_server in the foreground on loopback ports: gsqlite3
 * backend on a temp db, HTTP API on, LUA records on, ECS processing on, and
 * LUA health checks every `checkIntervalS` seconds. The caller must stop() it.
 */
export async function startPdns(options: { checkIntervalS?: number } = {}): Promise<Pdns> {
  // The free ports are picked before pdns binds them: retry if another process took one meanwhile.
  for (let attempt = 1; ; attempt++) {
    try {
      return await launchPdns(options);
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}

async function launchPdns(options: { checkIntervalS?: number }): Promise<Pdns> {
  if (!existsSync(PDNS_BIN))
    throw new Error(`${PDNS_BIN} is missing: run scripts/setup.sh (Debian pdns-server, pdns-backend-sqlite3, sqlite3, dnsutils)`);
  const schema = SCHEMA_CANDIDATES.find((path) => existsSync(path));
  if (schema === undefined) throw new Error(`no sqlite schema for pdns at ${SCHEMA_CANDIDATES.join(' or ')}: run scripts/setup.sh`);
  const dir = await mkdtemp(join(tmpdir(), 'metasync-pdns-'));
  const db = join(dir, 'pdns.sqlite3');
  execFileSync('sqlite3', [db], { input: await readFile(schema, 'utf8') });
  const dnsPort = await freePort();
  const webPort = await freePort();
  const apiKey = 'metasync-test-key';
  const config = [
    'launch=gsqlite3',
    `gsqlite3-database=${db}`,
    'local-address=127.0.0.1',
    `local-port=${dnsPort}`,
    'api=yes',
    `api-key=${apiKey}`,
    'webserver=yes',
    'webserver-address=127.0.0.1',
    `webserver-port=${webPort}`,
    'webserver-allow-from=127.0.0.0/8',
    'enable-lua-records=yes',
    'edns-subnet-processing=yes',
    `lua-health-checks-interval=${options.checkIntervalS ?? 1}`,
    'cache-ttl=0',
    'query-cache-ttl=0',
    'negquery-cache-ttl=0',
    'zone-cache-refresh-interval=0',
    'loglevel=4',
    'security-poll-suffix=',
  ].join('\n');
  await writeFile(join(dir, 'pdns.conf'), `${config}\n`);
  const child: ChildProcess = spawn(
    PDNS_BIN,
    [`--config-dir=${dir}`, '--daemon=no', '--guardian=no', '--disable-syslog', `--socket-dir=${dir}`, '--write-pid=no'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const output: string[] = [];
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => output.push(chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => output.push(chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const apiUrl = `http://127.0.0.1:${webPort}`;
  const api = async (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${apiUrl}/api/v1/servers/localhost${path}`, {
      method,
      headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const outcome = await waitFor(
      async () => {
        if (child.exitCode !== null) return 'exited';
        return (await api('GET', '')).ok;
      },
      { timeoutMs: 15_000, intervalMs: 50, what: 'pdns_server API' },
    );
    if (outcome === 'exited') throw new Error(`pdns_server exited ${child.exitCode}: ${output.join('').slice(-2000)}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    dnsPort,
    apiUrl,
    apiKey,
    async createZone(name) {
      const zone = name.endsWith('.') ? name : `${name}.`;
      const response = await api('POST', '/zones', { name: zone, kind: 'Native', nameservers: [`ns1.${zone}`] });
      if (!response.ok) throw new Error(`creating zone ${zone} answered ${response.status}: ${await response.text()}`);
    },
    async dig(name, digOptions = {}) {
      const args = [
        `@127.0.0.1`,
        '-p',
        String(dnsPort),
        '+short',
        '+tries=1',
        '+time=2',
        ...(digOptions.subnet === undefined ? [] : [`+subnet=${digOptions.subnet}`]),
        name,
        digOptions.type ?? 'A',
      ];
      const { stdout } = await execFileAsync('dig', args, { timeout: 10_000 });
      return stdout
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line !== '' && !line.startsWith(';'))
        .sort();
    },
    stop,
    logs: () => output.join(''),
  };
}
