import { execFileSync } from 'node:child_process';

/**
 * Cross-process tests spawn the built bins (dist/), so build once per run.
 * METASYNC_SKIP_BUILD=1 skips it when iterating on unit tests only.
 */
export default function setup(): void {
  if (process.env.METASYNC_SKIP_BUILD === '1') return;
  execFileSync('pnpm', ['run', 'build'], { stdio: 'inherit', cwd: new URL('../..', import.meta.url).pathname });
}
