import { readFileSync } from 'node:fs';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { hasErrno, metasyncError } from '@metasync/shared';
import { writeFileAtomic } from '@metasync/shared/fs';

/**
 * What the `local` launcher keeps per mirror, one directory each under its
 * launch dir (config `launch.local.dir`):
 *
 *   <dir>/mirrors/<id>/server.json   id, region, release, port, address, URLs, paths
 *   <dir>/mirrors/<id>/mirror.pid    pid of the running mirror process
 *   <dir>/mirrors/<id>/data/         the mirror's --data
 *   <dir>/mirrors/<id>/mirror.log    its stdout and stderr
 *
 * server.json is written before the process starts, so a crash between the two
 * leaves a record a rerun finds; the pid file is written once it is spawned.
 */
export const MIRROR_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const serverRecordSchema = z.object({
  mirrorId: z.string().regex(MIRROR_ID_PATTERN),
  region: z.string(),
  releaseVersion: z.string(),
  port: z.number().int().positive(),
  address: z.string(),
  url: z.string(),
  healthUrl: z.string(),
  dataDir: z.string(),
  logFile: z.string(),
  /** The mirror's main.js this server runs (from the release). */
  main: z.string(),
});
export type ServerRecord = z.infer<typeof serverRecordSchema>;

export const mirrorDir = (dir: string, mirrorId: string): string => join(dir, 'mirrors', mirrorId);
const recordPath = (dir: string, mirrorId: string): string => join(mirrorDir(dir, mirrorId), 'server.json');
export const pidPath = (dir: string, mirrorId: string): string => join(mirrorDir(dir, mirrorId), 'mirror.pid');

export async function readRecord(dir: string, mirrorId: string): Promise<ServerRecord | undefined> {
  let text: string;
  try {
    text = await readFile(recordPath(dir, mirrorId), 'utf8');
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw metasyncError(
      'METASYNC_ERR_LAUNCH_FAILED',
      `${recordPath(dir, mirrorId)} is not JSON: ${(err as Error).message}`,
      { path: recordPath(dir, mirrorId) },
      err,
    );
  }
  const parsed = serverRecordSchema.safeParse(json);
  if (!parsed.success)
    throw metasyncError(
      'METASYNC_ERR_LAUNCH_FAILED',
      `${recordPath(dir, mirrorId)} is not a local launcher record: ${parsed.error.message.slice(0, 200)}`,
      {
        path: recordPath(dir, mirrorId),
      },
    );
  return parsed.data;
}

export async function writeRecord(dir: string, record: ServerRecord): Promise<void> {
  await mkdir(mirrorDir(dir, record.mirrorId), { recursive: true });
  await writeFileAtomic(recordPath(dir, record.mirrorId), `${JSON.stringify(record, null, 2)}\n`, { mode: 0o644 });
}

export async function listMirrorIds(dir: string): Promise<string[]> {
  try {
    return (await readdir(join(dir, 'mirrors'))).filter((name) => MIRROR_ID_PATTERN.test(name)).sort();
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return [];
    throw err;
  }
}

export async function readPid(dir: string, mirrorId: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(pidPath(dir, mirrorId), 'utf8')).trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/**
 * True when `pid` is alive and is this record's mirror: its command line names
 * the mirror id and the data dir. A pid file can outlive its process and the
 * pid be reused by anything else; that process is never signalled. A zombie
 * has an empty command line, so it counts as gone.
 */
export function isOurMirror(pid: number, record: ServerRecord): boolean {
  let args: string[];
  try {
    args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch (err) {
    if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ESRCH')) return false;
    throw err;
  }
  const after = (flag: string): string | undefined => args[args.indexOf(flag) + 1];
  return args.includes('--mirror-id') && after('--mirror-id') === record.mirrorId && after('--data') === record.dataDir;
}
