/**
 * One `inotifywait -m -r` child (inotify-tools) watching the whole source
 * tree: the kernel watches of a large tree held outside this process.
 *
 * Why: each `fs.watch` costs this process 1.4-1.7 KB of RSS (Node's FSWatcher
 * and handle, its listeners, libuv's watcher and path), about 200 MB for the
 * 124,732 directories of a million-path tree; inotifywait holds a watch in
 * about 200 bytes (12.8 MB RSS for 50,000 directories, measured).
 *
 * Its output is NUL-separated (`%w%0%f%0%e%0`: a file name cannot hold a NUL),
 * its stderr says when every watch is in place ("Watches established."); a
 * watch the kernel refuses during set-up ends it ("Failed to watch D; upper
 * limit on inotify watches reached!"), one refused later (a new directory) is
 * only reported, and bulk-dir-watches.ts watches that directory itself. It is started under `setpriv --pdeathsig TERM`
 * when setpriv is there, so a primary killed with SIGKILL does not leave it
 * holding a second set of watches against the user's limit.
 *
 * Its recursion watches a directory after reading it (libinotifytools watches
 * depth first, the directory last), so a directory created during the set-up
 * can be left unwatched: bulk-dir-watches.ts reads the watched inodes back from
 * the kernel (`watchedInodes`) and watches any other directory itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { metasyncError } from '@metasync/shared';

/** What Node's fs.watch asks inotify for (libuv): the same events, so both backends report alike. */
const EVENTS = 'create,modify,attrib,delete,moved_from,moved_to,delete_self,move_self';
const CHANGE_FLAGS = new Set(['MODIFY', 'ATTRIB']);

export interface InotifywaitOptions {
  rootReal: string;
  /** The program and its leading arguments; default: setpriv --pdeathsig TERM inotifywait (or inotifywait alone). */
  command: readonly string[];
  /** An entry of `dirRel` changed ('' = the root); `name` undefined for the directory itself. */
  onEvent(dirRel: string, name: string | undefined, eventType: 'rename' | 'change'): void;
  /** The kernel dropped events (its queue overflowed): only a scan finds what they were. */
  onOverflow(): void;
  /** The child ended without close() (any output line it wrote last in `message`). */
  onExit(message: string): void;
}

export interface InotifywaitProcess {
  /** Resolves true once every directory present is watched, false when the child ended first. */
  readonly established: Promise<boolean>;
  readonly pid: number | undefined;
  close(): void;
}

/** inotifywait under setpriv when both are on PATH, inotifywait alone without setpriv; undefined without inotifywait. */
export function findInotifywait(path = process.env['PATH'] ?? ''): string[] | undefined {
  const find = (name: string): string | undefined =>
    path
      .split(delimiter)
      .filter((dir) => dir !== '')
      .map((dir) => join(dir, name))
      .find((candidate) => {
        try {
          accessSync(candidate, constants.X_OK);
          return true;
        } catch {
          return false;
        }
      });
  const inotifywait = find('inotifywait');
  if (inotifywait === undefined) return undefined;
  const setpriv = find('setpriv');
  return setpriv === undefined ? [inotifywait] : [setpriv, '--pdeathsig', 'TERM', inotifywait];
}

/** The inotifywait command when it holds the watches; undefined for one fs.watch a directory. */
export function chooseInotifywait(options: {
  watcher?: 'auto' | 'inotifywait' | 'fs-watch' | undefined;
  inotifywaitCommand?: readonly string[] | undefined;
  watchDir?: unknown;
  maxWatches?: number | undefined;
}): readonly string[] | undefined {
  const kind = options.watcher ?? 'auto';
  // A cap is kept exactly only by watching one directory at a time here; an injected fs.watch is a test's.
  if (kind === 'fs-watch' || options.watchDir !== undefined || (options.maxWatches ?? 0) > 0) return undefined;
  const command = options.inotifywaitCommand ?? findInotifywait();
  if (command === undefined && kind === 'inotifywait') {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', '--source-watcher inotifywait: no inotifywait on PATH (Debian: inotify-tools)', {
      sourceWatcher: kind,
    });
  }
  return command;
}

export function startInotifywait(options: InotifywaitOptions): InotifywaitProcess {
  const [program, ...leading] = options.command;
  if (program === undefined) throw new Error('no inotifywait command');
  const args = [...leading, '-m', '-r', '-e', EVENTS, '--format', '%w%0%f%0%e%0', '--no-newline', '--', options.rootReal];
  const child: ChildProcess = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const prefix = `${options.rootReal}/`;
  let closed = false;
  let lastLine = '';
  let establish: (ok: boolean) => void = () => undefined;
  const established = new Promise<boolean>((resolve) => (establish = resolve));

  const fields: string[] = [];
  let partial = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    let start = 0;
    for (let nul = chunk.indexOf('\0'); nul !== -1; nul = chunk.indexOf('\0', start)) {
      fields.push(partial + chunk.slice(start, nul));
      partial = '';
      start = nul + 1;
      if (fields.length === 3) {
        const [dir, name, flags] = fields as [string, string, string];
        fields.length = 0;
        if (!closed) dispatch(dir, name, flags);
      }
    }
    partial += chunk.slice(start);
  });

  function dispatch(dir: string, name: string, flags: string): void {
    const list = flags.split(',');
    if (list.includes('Q_OVERFLOW')) return options.onOverflow();
    if (!dir.startsWith(prefix)) return; // not below the root (inotifywait names every watch by the path it added)
    const dirRel = dir.slice(prefix.length, dir.endsWith('/') ? -1 : undefined);
    const change = list.every((flag) => CHANGE_FLAGS.has(flag) || flag === 'ISDIR');
    options.onEvent(dirRel, name === '' ? undefined : name, change ? 'change' : 'rename');
  }

  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
    let newline;
    while ((newline = stderr.indexOf('\n')) !== -1) {
      const line = stderr.slice(0, newline);
      stderr = stderr.slice(newline + 1);
      if (line !== '') lastLine = line;
      if (line === 'Watches established.') establish(true);
    }
  });

  const ended = (message: string): void => {
    establish(false);
    if (!closed) {
      closed = true;
      options.onExit(message);
    }
  };
  child.on('error', (err) => ended(`${program}: ${err.message}`));
  child.on('exit', (code, signal) => ended(`inotifywait exited (${signal ?? `code ${code}`})${lastLine === '' ? '' : `: ${lastLine}`}`));

  return {
    established,
    pid: child.pid,
    close() {
      closed = true;
      establish(false);
      child.kill('SIGTERM');
    },
  };
}

/**
 * The inodes `pid` holds inotify watches on, from the kernel's own list (`inotify wd:HEX ino:HEX sdev:...` lines
 * of /proc/<pid>/fdinfo/<fd>); undefined when that cannot be read (then nothing is assumed watched).
 */
export async function watchedInodes(pid: number): Promise<Set<number> | undefined> {
  try {
    const inodes = new Set<number>();
    let found = false;
    for (const fd of await readdir(`/proc/${pid}/fd`)) {
      if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) !== 'anon_inode:inotify') continue;
      found = true;
      const info = await readFile(`/proc/${pid}/fdinfo/${fd}`, 'latin1');
      for (const match of info.matchAll(/^inotify wd:[0-9a-f]+ ino:([0-9a-f]+) /gm)) inodes.add(Number.parseInt(match[1]!, 16));
    }
    return found ? inodes : undefined;
  } catch {
    return undefined;
  }
}
