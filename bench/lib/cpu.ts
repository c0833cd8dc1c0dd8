import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cpus } from 'node:os';

const execFileAsync = promisify(execFile);

/**
 * On a small machine the load generator and the server fight for cores, and
 * whoever wins skews the figure. With two or more cores we give the server
 * under test core 0 and wrk the rest, the same for metasync and nginx.
 */
export interface CpuPlan {
  pin: boolean;
  serverCpus: string;
  loadCpus: string;
  allCpus: string;
}

export function planCpus(wantPin: boolean): CpuPlan {
  const count = cpus().length;
  const allCpus = `0-${count - 1}`;
  if (!wantPin || count < 2) return { pin: false, serverCpus: allCpus, loadCpus: allCpus, allCpus };
  return { pin: true, serverCpus: '0', loadCpus: count === 2 ? '1' : `1-${count - 1}`, allCpus };
}

/** Sets the CPU affinity of every thread of `pid`. */
export async function pinProcess(pid: number, cpuList: string): Promise<void> {
  await execFileAsync('taskset', ['-a', '-cp', cpuList, String(pid)]);
}
