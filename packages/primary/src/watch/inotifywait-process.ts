/**
 * One `inotifywait -m --fromfile -` child (inotify-tools) watching the
 * directories it is given on stdin: the kernel watches of a large tree held
 * outside this process.
 *
 * Why: each `fs.watch` costs this process 1.4-1.7 KB of RSS (Node's FSWatcher
 * and handle, its listeners, libuv's watcher and path), about 200 MB for the
 * 124,732 directories of a million-path tree; inotifywait holds a watch in
 * about 300 bytes (41 MB of RSS for 124,732 directories, measured).
 *
 * Not `-r`: its recursion watches a directory only after reading it, and its
 * names for watches go stale when directories are renamed (libinotifytools
 * keeps the path it recorded), so events would come under old paths. Given a
 * list, parents first, it watches exactly those paths in that order and adds
 * none. A listed path gone before its watch ends the set-up ("Couldn't watch
 * D: No such file or directory"); so does the kernel's limit ("Failed to watch
 * D; upper limit on inotify watches reached!").
 *
 * Its output is NUL-separated (`%w%0%f%0%e%0`: a file name cannot hold a NUL);
 * its stderr says when every watch is in place ("Watches established."). It is
 * started under `setpriv --pdeathsig TERM` when setpriv is there, so a primary
 * killed with SIGKILL does not leave it holding a second set of watches
 * against the user's limit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { metasyncError } from '@metasync/shared';

/**
 * What Node's fs.watch asks inotify for (libuv), without the events about a watched directory itself
 * (delete_self, move_self, and attrib with an empty name): its parent's watch reports the same entry by name,
 * and an event without a name would have tree-events.ts walk and re-read the whole directory. inotifywait
 * prints only events it was asked for, so q_overflow is asked for too.
 */
const EVENTS = 'create,modify,attrib,delete,moved_from,moved_to,q_overflow';
const CHANGE_FLAGS = new Set(['MODIFY', 'ATTRIB']);
/** An event's flags as inotifywait prints them; anything else means its output cannot be trusted. */
const FLAGS_PATTERN = /^[A-Z_]+(,[A-Z_]+)*$/;

export interface InotifywaitOptions {
  rootReal: string;
  /** Directories to watch, absolute, parents before children; a name --fromfile cannot carry (a newline, a leading @) is not listable. */
  directories: readonly string[];
  /** The program and its leading arguments; default: setpriv --pdeathsig TERM inotifywait (or inotifywait alone). */
  command: readonly string[];
  /** The entry `name` of `dirRel` ('' = the root) changed. */
  onEvent(dirRel: string, name: string, eventType: 'rename' | 'change'): void;
  /** The kernel dropped events (its queue overflowed): only a scan finds what they were. */
  onOverflow(): void;
  /** The child ended (or its output became unreadable) after set-up, without close(); its last stderr line in `message`. */
  onExit(message: string): void;
}

export interface InotifywaitProcess {
  /** Resolves true once every directory present is watched, or with why not (the child ended, or was closed). */
  readonly established: Promise<true | string>;
  readonly pid: number | undefined;
  /** The child has ended (or was closed). */
  ended(): boolean;
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
  if (kind === 'inotifywait' && (options.maxWatches ?? 0) > 0) {
    throw metasyncError(
      'METASYNC_ERR_CONFIG_INVALID',
      '--source-watcher inotifywait with --source-max-watches: only fs-watch keeps a cap exactly (drop one of them)',
      { sourceWatcher: kind, sourceMaxWatches: options.maxWatches },
    );
  }
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

/** Whether --fromfile can carry `absolute`: one path a line, read into a 4,096-byte buffer. */
export function listable(absolute: string): boolean {
  return !absolute.includes('\n') && Buffer.byteLength(absolute) < 4095;
}

export function startInotifywait(options: InotifywaitOptions): InotifywaitProcess {
  const [program, ...leading] = options.command;
  if (program === undefined) throw new Error('no inotifywait command');
  // -P: a listed directory replaced by a symlink meanwhile is not followed out of the tree.
  const args = [...leading, '-m', '-P', '--fromfile', '-', '-e', EVENTS, '--format', '%w%0%f%0%e%0', '--no-newline'];
  const child: ChildProcess = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin?.on('error', () => undefined); // a child that ended early: its exit says why
  child.stdin?.end(options.directories.map((dir) => `${dir}\n`).join(''));
  const prefix = `${options.rootReal}/`;
  let closed = false;
  let lastLine = '';
  let limitLine: string | undefined;
  let establish: (result: true | string) => void = () => undefined;
  const established = new Promise<true | string>((resolve) => (establish = resolve));

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
    // inotifywait names every watch by the path it was given (a directory of the root, with a slash added);
    // a record over 4 KiB comes out garbled.
    if (!FLAGS_PATTERN.test(flags) || !dir.startsWith(prefix)) {
      child.kill('SIGTERM');
      return ended(`inotifywait printed an unreadable event (${JSON.stringify(`${dir.slice(0, 200)}|${flags.slice(0, 40)}`)})`);
    }
    if (name === '') return; // about the watched directory itself: its parent's watch names it
    const dirRel = dir.slice(prefix.length, -1);
    // As fs.watch: an attribute change of a subdirectory is a 'rename' (tree-events.ts looks at what it is now).
    const change = list.every((flag) => CHANGE_FLAGS.has(flag));
    options.onEvent(dirRel, name, change ? 'change' : 'rename');
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
      if (line.includes('upper limit on inotify watches')) limitLine = line; // the next line only says how to raise it
      if (line === 'Watches established.') establish(true);
    }
  });

  const ended = (message: string): void => {
    establish(message);
    if (!closed) {
      closed = true;
      options.onExit(message);
    }
  };
  child.on('error', (err) => ended(`${program}: ${err.message}`));
  child.on('exit', (code, signal) => {
    const said = limitLine ?? lastLine;
    ended(`inotifywait exited (${signal ?? `code ${code}`})${said === '' ? '' : `: ${said}`}`);
  });

  return {
    established,
    pid: child.pid,
    ended: () => closed,
    close() {
      closed = true;
      establish('closed');
      child.kill('SIGTERM');
    },
  };
}

/**
 * The inotify watches `pid` holds, watch number -> inode, from the kernel's own list (`inotify wd:HEX ino:HEX
 * sdev:...` lines of /proc/<pid>/fdinfo/<fd>); undefined when that cannot be read (then nothing is trusted to it).
 */
export async function watchesByNumber(pid: number): Promise<Map<number, number> | undefined> {
  try {
    const watches = new Map<number, number>();
    let found = false;
    for (const fd of await readdir(`/proc/${pid}/fd`)) {
      if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) !== 'anon_inode:inotify') continue;
      found = true;
      const info = await readFile(`/proc/${pid}/fdinfo/${fd}`, 'latin1');
      for (const match of info.matchAll(/^inotify wd:([0-9a-f]+) ino:([0-9a-f]+) /gm)) {
        watches.set(Number.parseInt(match[1]!, 16), Number.parseInt(match[2]!, 16));
      }
    }
    return found ? watches : undefined;
  } catch {
    return undefined;
  }
}
