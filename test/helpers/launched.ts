import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What the `local` launcher recorded for its mirrors under a launch dir, read
 * straight from its files (tests check the launcher's state, not its API).
 */
export interface LaunchedRecord {
  mirrorId: string;
  region: string;
  releaseVersion: string;
  url: string;
  address: string;
  pid: number | undefined;
}

export function launchedMirrors(launchDir: string): LaunchedRecord[] {
  let ids: string[];
  try {
    ids = readdirSync(join(launchDir, 'mirrors'));
  } catch {
    return [];
  }
  return ids.sort().flatMap((id) => {
    try {
      const record = JSON.parse(readFileSync(join(launchDir, 'mirrors', id, 'server.json'), 'utf8')) as Omit<LaunchedRecord, 'pid'>;
      let pid: number | undefined;
      try {
        pid = Number(readFileSync(join(launchDir, 'mirrors', id, 'mirror.pid'), 'utf8').trim());
      } catch {
        pid = undefined;
      }
      return [
        {
          mirrorId: record.mirrorId,
          region: record.region,
          releaseVersion: record.releaseVersion,
          url: record.url,
          address: record.address,
          pid,
        },
      ];
    } catch {
      return [];
    }
  });
}

export function isAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8') !== '';
  } catch {
    return false;
  }
}

/** Test cleanup: SIGKILL every mirror process still recorded under the launch dir (they are detached from the test). */
export function killLaunched(launchDir: string): void {
  for (const record of launchedMirrors(launchDir)) {
    if (record.pid !== undefined && isAlive(record.pid) && readFileSync(`/proc/${record.pid}/cmdline`, 'utf8').includes(record.mirrorId))
      process.kill(record.pid, 'SIGKILL');
  }
}
