/**
 * Where mirror servers come from. `metasync mirror up <id> --launch <kind>`
 * asks a launcher for a server, waits until it is caught up and fresh, then
 * registers DNS; `mirror retire` takes DNS out, drains, then destroys it.
 * Servers are immutable: an upgrade launches a new server on the new release
 * and retires the old one (`metasync mirrors roll`), never patches in place.
 *
 * Every method is idempotent and keyed by mirror id, so a rerun after a crash
 * at any step finishes the job: launch() finds a server already created for
 * the id (same release) and returns it instead of creating a second one;
 * destroy() of a server that is gone is a no-op.
 */
export type LauncherKind = 'aws' | 'local';

export interface LaunchSpec {
  mirrorId: string;
  region: string;
  /** Release version the server runs (the `pnpm release` artifact); launchers that run this checkout may ignore it. */
  releaseVersion: string;
  /** The primary the mirror follows. */
  primaryUrl: string;
  /** The mirror's enrolment credential (`<id>:<secret>`), handed to the server; never logged. */
  credential?: string | undefined;
  /** The primary's active public key, pinned on the mirror. */
  primaryKey?: string | undefined;
}

export interface LaunchedServer {
  mirrorId: string;
  region: string;
  /** The provider's handle: an EC2 instance id, or a local pid. */
  serverId: string;
  releaseVersion: string;
  /** Base URL the CLI probes (and clients use). */
  url: string;
  /** Freshness URL the DNS health check fetches. */
  healthUrl: string;
  /** Address the DNS record carries. */
  address: string;
  state: 'pending' | 'running' | 'stopping' | 'stopped';
}

export interface LaunchProgress {
  (line: string): void;
}

export interface Launcher {
  readonly kind: LauncherKind;
  /** Creates the server for spec.mirrorId, or returns the one already created for it. Resolves once it has an address. */
  launch(spec: LaunchSpec, progress?: LaunchProgress): Promise<LaunchedServer>;
  find(mirrorId: string): Promise<LaunchedServer | undefined>;
  /** Servers this launcher manages (tag `managed-by=metasync`, or local pid files). */
  list(): Promise<LaunchedServer[]>;
  /** Stops and destroys the server of mirrorId; resolves once it is gone. A no-op when there is none. */
  destroy(mirrorId: string, progress?: LaunchProgress): Promise<void>;
}
