import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { mallocEnv } from '../../bench/lib/fleet.js';

/** A million-path primary replays its journal, and a mirror loads its index and catches up, in well under this. */
const KEPT_FLEET_START_MS = 600_000;

/**
 * The daemons' data dirs and start options of the fleet a publish-visible bench kept in `keptFleetDir`
 * (`--kept-fleet`), on jemalloc as the systemd units run them; undefined without one.
 */
export function keptFleet(keptFleetDir: string | undefined, mirrors: number) {
  if (keptFleetDir === undefined) return undefined;
  const fleet = join(keptFleetDir, 'fleet');
  const dataDir = (name: string): string => {
    const dir = join(fleet, name);
    if (!existsSync(dir)) throw new Error(`--kept-fleet: ${dir} does not exist (a kept fleet of ${mirrors} mirrors is needed)`);
    return dir;
  };
  const env = mallocEnv('jemalloc');
  return {
    startMs: KEPT_FLEET_START_MS,
    primary: { dataDir: dataDir('primary-data'), readyTimeoutMs: KEPT_FLEET_START_MS, env },
    mirror: (index: number) => ({ dataDir: dataDir(`mirror-${index}-data`), readyTimeoutMs: KEPT_FLEET_START_MS, env }),
  };
}
