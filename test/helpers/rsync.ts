import { spawn } from 'node:child_process';

export const RSYNC_BIN = '/usr/bin/rsync';

export interface RsyncOptions {
  /** Source directory; a trailing slash is added so its contents land in `dst`. */
  src: string;
  dst: string;
  /** Extra flags after `-a`. */
  extraArgs?: string[];
  timeoutMs?: number;
}

export interface RsyncResult {
  durationMs: number;
  /** `--stats` output, for the report. */
  stats: string;
}

/**
 * Times `rsync -a src/ dst/` on local paths: the baseline a static mirror
 * setup uses. rsync stats every file of both trees on each run, which is the
 * O(corpus) cost metasync's apply avoids.
 */
export async function runRsync(options: RsyncOptions): Promise<RsyncResult> {
  const src = options.src.endsWith('/') ? options.src : `${options.src}/`;
  const dst = options.dst.endsWith('/') ? options.dst : `${options.dst}/`;
  const args = ['-a', '--stats', ...(options.extraArgs ?? []), src, dst];
  const startedAt = process.hrtime.bigint();
  const child = spawn(RSYNC_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => stdout.push(chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  const timeoutMs = options.timeoutMs ?? 30 * 60_000;
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (exitCode, exitSignal) => resolve({ code: exitCode, signal: exitSignal }));
  });
  const durationMs = Number(process.hrtime.bigint() - startedAt) / 1e6;
  clearTimeout(timer);
  if (code !== 0) {
    throw new Error(
      `rsync ${args.join(' ')} failed (code ${code}, signal ${signal}, timeout ${timeoutMs} ms): ${stderr.join('').slice(-2000)}`,
    );
  }
  return { durationMs, stats: stdout.join('') };
}

/** Reads "Number of regular files transferred: N" from `--stats` output. */
export function parseTransferredFiles(stats: string): number {
  const match = /Number of regular files transferred: ([\d,]+)/.exec(stats);
  if (match?.[1] === undefined)
    throw new Error(`expected 'Number of regular files transferred' in rsync --stats output, got: ${stats.slice(0, 500)}`);
  return Number(match[1].replaceAll(',', ''));
}
