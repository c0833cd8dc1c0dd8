import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { MIRROR_NODE_FLAGS, PRIMARY_NODE_FLAGS } from '@metasync/shared/node-version';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const BINS = {
  primary: `${REPO_ROOT}packages/primary/dist/main.js`,
  mirror: `${REPO_ROOT}packages/mirror/dist/main.js`,
  cli: `${REPO_ROOT}infra/dist/cli.js`,
} as const;

/** Node's arguments for `bin`: the node flags the systemd unit starts it with (infra/templates/systemd), the script, `args`. */
export function nodeArgsFor(bin: keyof typeof BINS, args: readonly string[]): string[] {
  const flags = bin === 'primary' ? PRIMARY_NODE_FLAGS : bin === 'mirror' ? MIRROR_NODE_FLAGS : [];
  return [...flags, BINS[bin], ...args];
}

export interface Daemon {
  child: ChildProcess;
  /** Base URL from the daemon's `listening` log line, e.g. http://127.0.0.1:41234 */
  url: string;
  /** Every JSON log line seen so far (non-JSON lines are kept as {msg: line}). */
  logs: Record<string, unknown>[];
  /** Sends SIGTERM and waits for exit (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL, as a crash. */
  kill(): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartDaemonOptions {
  bin: keyof typeof BINS;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** How long to wait for the `listening` line. */
  readyTimeoutMs?: number;
}

/**
 * Daemons still running. When this process exits (the end of a run, or a
 * harness interrupted by a signal that calls process.exit), they are killed
 * with it instead of living on as orphans holding ports and temp dirs.
 */
const live = new Set<ChildProcess>();
let killOnExitInstalled = false;
function killOnExit(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (killOnExitInstalled) return;
  killOnExitInstalled = true;
  process.once('exit', () => {
    for (const orphan of live) orphan.kill('SIGKILL');
  });
}

/**
 * Starts a built daemon and resolves once it logs `listening` with its URL.
 * Daemons log pino JSON to stdout; the ready line is `{"msg":"listening","url":...}`.
 */
export async function startDaemon(options: StartDaemonOptions): Promise<Daemon> {
  const child = spawn(process.execPath, nodeArgsFor(options.bin, options.args), {
    env: { ...process.env, METASYNC_LOG_LEVEL: 'info', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(child);
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr.push(chunk);
    if (process.env.METASYNC_TEST_VERBOSE === '1') process.stderr.write(chunk);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${options.bin} did not log 'listening' within ${options.readyTimeoutMs ?? 15_000} ms; stderr: ${stderr.join('').slice(-2000)}; logs: ${JSON.stringify(logs.slice(-5))}`,
        ),
      );
    }, options.readyTimeoutMs ?? 15_000);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (process.env.METASYNC_TEST_VERBOSE === '1') process.stderr.write(`[${options.bin}] ${line}\n`);
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        entry = { msg: line };
      }
      logs.push(entry);
      if (entry.msg === 'listening' && typeof entry.url === 'string') {
        clearTimeout(timer);
        resolve(entry.url);
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(
        new Error(
          `${options.bin} exited (code ${code}, signal ${signal}) before listening; stderr: ${stderr.join('').slice(-2000)}; logs: ${JSON.stringify(logs.slice(-5))}`,
        ),
      );
    });
  });
  const stop = async (graceMs = 5_000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  const kill = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await exited;
  };
  return { child, url, logs, stop, kill, exited };
}
