import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const WRK_BIN = '/usr/bin/wrk';

export interface WrkOptions {
  /** Base URL, e.g. http://127.0.0.1:8080 */
  url: string;
  /** Request paths (`/p2/a/b.json`); each request picks one at random. */
  paths: readonly string[];
  connections: number;
  threads?: number;
  durationSec: number;
  headers?: Record<string, string>;
  /** Seeds the per-thread random path choice, so two servers see the same sequence. */
  seed?: number;
  timeoutSec?: number;
  /** Runs wrk under `taskset -c <cpuList>` so it does not compete with the server's core. */
  cpuList?: string;
}

export interface WrkResult {
  requests: number;
  durationSec: number;
  requestsPerSec: number;
  bytesPerSec: number;
  latencyP50Ms: number;
  latencyP90Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
  /** Responses with a status >= 400. */
  statusErrors: number;
  /** connect + read + write + timeout errors. */
  socketErrors: number;
}

/**
 * The Lua side: every thread reads the path list, seeds its generator from the
 * given seed and its thread number, picks a random path per request, and the
 * main state prints one machine-readable line at the end.
 */
export const WRK_RANDOM_PATHS_LUA = `
local thread_count = 0
function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
end

local paths = {}
function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then paths[#paths + 1] = line end
  end
  math.randomseed(tonumber(args[2]) * 1000 + (tid or 0))
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"durationUs":%d,"bytes":%d,"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"statusErrors":%d,"timeoutErrors":%d,"p50Us":%d,"p90Us":%d,"p99Us":%d,"maxUs":%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`;

interface WrkJson {
  requests: number;
  durationUs: number;
  bytes: number;
  connectErrors: number;
  readErrors: number;
  writeErrors: number;
  statusErrors: number;
  timeoutErrors: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  maxUs: number;
}

/** Runs wrk with random paths for `durationSec`; bounded by a hard kill at duration + 30 s. */
export async function runWrk(options: WrkOptions): Promise<WrkResult> {
  if (options.paths.length === 0) throw new Error('runWrk needs at least one path, got none');
  const dir = await mkdtemp(join(tmpdir(), 'metasync-wrk-'));
  try {
    const scriptPath = join(dir, 'random-paths.lua');
    const pathsPath = join(dir, 'paths.txt');
    await writeFile(scriptPath, WRK_RANDOM_PATHS_LUA);
    await writeFile(pathsPath, `${options.paths.join('\n')}\n`);
    const args = [
      `-t${options.threads ?? 1}`,
      `-c${options.connections}`,
      `-d${options.durationSec}s`,
      `--timeout`,
      `${options.timeoutSec ?? 5}s`,
      '-s',
      scriptPath,
      ...Object.entries(options.headers ?? {}).flatMap(([name, value]) => ['-H', `${name}: ${value}`]),
      options.url,
      '--',
      pathsPath,
      String(options.seed ?? 1),
    ];
    const command = options.cpuList === undefined ? WRK_BIN : 'taskset';
    const commandArgs = options.cpuList === undefined ? args : ['-c', options.cpuList, WRK_BIN, ...args];
    const output = await runBounded(command, commandArgs, (options.durationSec + 30) * 1000);
    return parseWrkOutput(output);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function parseWrkOutput(output: string): WrkResult {
  const line = output.split('\n').find((candidate) => candidate.startsWith('WRK_JSON '));
  if (line === undefined) throw new Error(`expected a 'WRK_JSON {...}' line in wrk output, got: ${output.slice(-2000)}`);
  const raw = JSON.parse(line.slice('WRK_JSON '.length)) as WrkJson;
  const durationSec = raw.durationUs / 1e6;
  return {
    requests: raw.requests,
    durationSec,
    requestsPerSec: durationSec > 0 ? raw.requests / durationSec : 0,
    bytesPerSec: durationSec > 0 ? raw.bytes / durationSec : 0,
    latencyP50Ms: raw.p50Us / 1000,
    latencyP90Ms: raw.p90Us / 1000,
    latencyP99Ms: raw.p99Us / 1000,
    latencyMaxMs: raw.maxUs / 1000,
    statusErrors: raw.statusErrors,
    socketErrors: raw.connectErrors + raw.readErrors + raw.writeErrors + raw.timeoutErrors,
  };
}

async function runBounded(command: string, args: string[], timeoutMs: number): Promise<string> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => stdout.push(chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (exitCode, exitSignal) => resolve({ code: exitCode, signal: exitSignal }));
  });
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} failed (code ${code}, signal ${signal}): ${stderr.join('').slice(-2000)}`);
  return stdout.join('');
}
