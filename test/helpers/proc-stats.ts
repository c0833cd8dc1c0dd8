import { readdir, readFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';

export interface ProcMemory {
  /** Resident set size now, bytes (VmRSS). */
  rssBytes: number;
  /** Peak resident set size, bytes (VmHWM). */
  peakRssBytes: number;
  /** Of the RSS: anonymous pages (heap, buffers), file-backed ones (the node binary's code) and shared memory. */
  rssAnonBytes: number;
  rssFileBytes: number;
  rssShmemBytes: number;
}

/**
 * Reads a process's memory from /proc/<pid>/status (Linux). RSS counts the
 * pages the process really holds, which is what a machine's memory limit bites on.
 */
export async function readProcMemory(pid: number): Promise<ProcMemory> {
  const statusPath = `/proc/${pid}/status`;
  const text = await readFile(statusPath, 'utf8');
  return {
    rssBytes: readKilobytes(text, 'VmRSS', statusPath),
    peakRssBytes: readKilobytes(text, 'VmHWM', statusPath),
    rssAnonBytes: readKilobytes(text, 'RssAnon', statusPath),
    rssFileBytes: readKilobytes(text, 'RssFile', statusPath),
    rssShmemBytes: readKilobytes(text, 'RssShmem', statusPath),
  };
}

/** `pid`'s child processes named `comm` (the kernel's list of each of its threads' children). */
export async function childrenNamed(pid: number, comm: string): Promise<number[]> {
  const found: number[] = [];
  for (const task of await readdir(`/proc/${pid}/task`).catch(() => [])) {
    const children = await readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '');
    for (const child of children.split(' ').filter((word) => word !== '')) {
      if ((await readFile(`/proc/${child}/comm`, 'utf8').catch(() => '')).trim() === comm) found.push(Number(child));
    }
  }
  return found;
}

/**
 * The RSS of `pid`'s child processes named `comm` (the primary's inotifywait, which holds its source-tree watches:
 * its memory is the primary's too). 0 when there is none.
 */
export async function readChildRssBytes(pid: number, comm: string): Promise<number> {
  let bytes = 0;
  for (const child of await childrenNamed(pid, comm))
    bytes += await readProcMemory(child).then(
      (memory) => memory.rssBytes,
      () => 0,
    );
  return bytes;
}

function readKilobytes(statusText: string, field: string, statusPath: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, 'm').exec(statusText);
  if (match?.[1] === undefined) throw new Error(`expected a '${field}: <n> kB' line in ${statusPath}, got none`);
  return Number(match[1]) * 1024;
}

/** CPU time a process has used so far (user + system), ms, from /proc/<pid>/stat. */
export async function readProcCpuMs(pid: number): Promise<number> {
  const statPath = `/proc/${pid}/stat`;
  const text = await readFile(statPath, 'utf8');
  // Field 2 (comm) may contain spaces and parentheses: split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime))
    throw new Error(`expected numeric utime/stime in ${statPath}, got ${JSON.stringify(fields.slice(11, 13))}`);
  const clockTicksPerSecond = 100; // USER_HZ, 100 on every Linux ABI node supports
  return ((utime + stime) * 1000) / clockTicksPerSecond;
}

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  ramBytes: number;
  node: string;
  platform: string;
  /** 1-minute load average when the figures were taken: other work on the box disturbs them. */
  loadAverage1m: number;
}

export function readMachineInfo(): MachineInfo {
  const cpuList = cpus();
  return {
    cores: cpuList.length,
    cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
    ramBytes: totalmem(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    loadAverage1m: Number((loadavg()[0] ?? 0).toFixed(2)),
  };
}
