import type { ErrorCode } from '../errors.js';

/**
 * The startup gate: every bin (metasync-primary, metasync-mirror, metasync) runs
 * it before importing anything else, so an older Node fails with one clear line
 * instead of a syntax or API error from deep inside a dependency. This module
 * imports nothing at run time for the same reason.
 *
 * The minimum major matches `engines` in every package.json; `.node-version`
 * pins the exact release that CI, the benchmarks and the release artifact use.
 */
export const REQUIRED_NODE_MAJOR = 24;

const CODE = 'METASYNC_ERR_NODE_UNSUPPORTED' satisfies ErrorCode;

/** Exit code for a Node that is too old: the one for config and usage errors. */
export const NODE_UNSUPPORTED_EXIT = 2;

/** The message to print when `version` (`process.versions.node` form, e.g. `20.19.1`) is too old; undefined when it is supported. */
export function nodeVersionProblem(options: { program: string; version: string; execPath: string }): string | undefined {
  const major = Number.parseInt(options.version.replace(/^v/, ''), 10);
  if (Number.isInteger(major) && major >= REQUIRED_NODE_MAJOR) return undefined;
  return (
    `${CODE}: ${options.program} needs Node.js ${REQUIRED_NODE_MAJOR} or newer; ` +
    `this is Node.js ${options.version} (${options.execPath}). ` +
    `In a checkout, \`bash scripts/setup.sh\` installs Node.js ${REQUIRED_NODE_MAJOR} as /usr/local/bin/node; ` +
    `a release artifact is run with the Node.js its NODE_VERSION file names (docs/operations.md, "Deploying").`
  );
}

interface NodeProcess {
  readonly versions: { readonly node: string };
  readonly execPath: string;
  readonly stderr: { write(text: string): unknown };
  exit(code: number): never;
}

/** Called first by each bin: prints the problem and exits 2 on a Node older than REQUIRED_NODE_MAJOR. */
export function exitUnlessSupportedNode(program: string, proc: NodeProcess = process): void {
  const problem = nodeVersionProblem({ program, version: proc.versions.node, execPath: proc.execPath });
  if (problem === undefined) return;
  proc.stderr.write(`${problem}\n`);
  proc.exit(NODE_UNSUPPORTED_EXIT);
}

/**
 * Node flags the primary is started with (the systemd unit, the tests' and the bench's
 * launcher; a flag, because V8 sizes its young generation when the process starts).
 * Node 24 lets the young generation grow to 128 MB (64 MB semi-spaces) under an ingest's
 * churn of short-lived file buffers and parsed JSON, and keeps it: a 100k-path ingest
 * peaked at 480 MB RSS by default and at 390 MB with 16 MB semi-spaces, in the same time
 * within the run-to-run noise (docs/operations.md, "Sizing").
 */
export const PRIMARY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16'];

/**
 * Node flags the mirror is started with (the same launchers as PRIMARY_NODE_FLAGS). Serving grows the
 * young generation of the thread that serves to its maximum (128 MB of semi-spaces on Node 24) and V8
 * keeps it, since an idle mirror runs no collection that would shrink it: at 100k paths a mirror held
 * 109 MB of heap for 48 MB used 20 s after a burst of requests (docs/operations.md, "Sizing").
 */
export const MIRROR_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];
