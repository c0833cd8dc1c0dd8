import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';

export const NGINX_BIN = '/usr/sbin/nginx';

export interface StartNginxOptions {
  /** Directory served at `/`; `gzip_static on` serves `<file>.gz` siblings to gzip clients. */
  root: string;
  /** Scratch directory for the config, pid, logs and temp paths (created if missing). */
  prefix: string;
  workerProcesses?: number;
  readyTimeoutMs?: number;
}

export interface Nginx {
  url: string;
  port: number;
  masterPid: number;
  /** Pids of the worker processes (what serves requests). */
  workerPids(): Promise<number[]>;
  stop(graceMs?: number): Promise<void>;
}

/**
 * Renders a static-serving config the way a performance-minded operator would
 * write it: one worker, sendfile, keep-alive, open_file_cache (sized to the fd
 * limit), `gzip_static on`
 * (precompressed siblings, no per-request compression), no access log.
 */
export function renderNginxConfig(options: {
  root: string;
  prefix: string;
  port: number;
  workerProcesses: number;
  runAsRoot: boolean;
  maxOpenFiles: number;
}): string {
  const { root, prefix, port } = options;
  // open_file_cache holds descriptors open: keep it well under the fd limit
  // nginx can actually get (it cannot raise past the hard limit).
  const openFileCacheMax = Math.max(1000, Math.min(200_000, Math.floor(options.maxOpenFiles * 0.8)));
  return `${options.runAsRoot ? 'user root;\n' : ''}worker_processes ${options.workerProcesses};
worker_rlimit_nofile ${options.maxOpenFiles};
error_log ${join(prefix, 'error.log')} warn;
pid ${join(prefix, 'nginx.pid')};
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(prefix, 'tmp', 'body')};
  proxy_temp_path ${join(prefix, 'tmp', 'proxy')};
  fastcgi_temp_path ${join(prefix, 'tmp', 'fastcgi')};
  uwsgi_temp_path ${join(prefix, 'tmp', 'uwsgi')};
  scgi_temp_path ${join(prefix, 'tmp', 'scgi')};
  types { application/json json; }
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  open_file_cache max=${openFileCacheMax} inactive=60s;
  open_file_cache_valid 60s;
  gzip_static on;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / { try_files $uri =404; }
  }
}
`;
}

/**
 * Starts Debian's nginx in the foreground on a free loopback port; resolves once it accepts connections.
 * The port is found by binding and releasing it, so another process (a test running beside) may take it
 * first: nginx then fails to bind and is started again on a new port, and a connection is only trusted
 * once nginx is still running after it (it could have reached the other process).
 */
export async function startNginx(options: StartNginxOptions): Promise<Nginx> {
  await mkdir(join(options.prefix, 'tmp'), { recursive: true });
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNginxOnce(options);
    } catch (err) {
      if (!(err instanceof PortTakenError) || attempt >= START_ATTEMPTS) throw err;
    }
  }
}

const START_ATTEMPTS = 3;

class PortTakenError extends Error {}

async function startNginxOnce(options: StartNginxOptions): Promise<Nginx> {
  const port = await findFreePort();
  const configPath = join(options.prefix, 'nginx.conf');
  const config = renderNginxConfig({
    root: options.root,
    prefix: options.prefix,
    port,
    workerProcesses: options.workerProcesses ?? 1,
    runAsRoot: process.getuid?.() === 0,
    maxOpenFiles: await readHardOpenFilesLimit(),
  });
  await writeFile(configPath, config);
  const errorLog = join(options.prefix, 'error.log');
  const child = spawn(NGINX_BIN, ['-c', configPath, '-p', options.prefix, '-e', errorLog, '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr: string[] = [];
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.pid === undefined) throw new Error(`could not spawn ${NGINX_BIN}`);
  const masterPid = child.pid;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 10_000);
  const failed = async (): Promise<Error> => {
    const log = await readFile(errorLog, 'utf8').catch(() => '');
    const text = `nginx exited before listening on 127.0.0.1:${port}; stderr: ${stderr.join('')}; error.log: ${log.slice(-2000)}`;
    return /Address already in use/.test(stderr.join('') + log) ? new PortTakenError(text) : new Error(text);
  };
  for (let attempt = 0; attempt < 10_000; attempt++) {
    if (child.exitCode !== null || child.signalCode !== null) throw await failed();
    if (await canConnect(port)) {
      // Still running a moment after the connection: it was nginx that answered, not a process holding the port.
      await new Promise((resolve) => setTimeout(resolve, 50));
      if (child.exitCode !== null || child.signalCode !== null) throw await failed();
      break;
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nginx did not accept connections on 127.0.0.1:${port} within ${options.readyTimeoutMs ?? 10_000} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    masterPid,
    workerPids: () => readChildPids(masterPid),
    stop: (graceMs = 5_000) => stopChild(child, exited, graceMs),
  };
}

async function stopChild(child: ChildProcess, exited: Promise<void>, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  // SIGQUIT is nginx's graceful shutdown; SIGKILL only if it hangs.
  child.kill('SIGQUIT');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** The hard RLIMIT_NOFILE of this process (what nginx, started by it, can raise its soft limit to). */
export async function readHardOpenFilesLimit(): Promise<number> {
  const text = await readFile('/proc/self/limits', 'utf8');
  const match = /^Max open files\s+\S+\s+(\S+)/m.exec(text);
  const hard = match?.[1] === 'unlimited' ? 1_048_576 : Number(match?.[1]);
  if (!Number.isInteger(hard) || hard <= 0)
    throw new Error(`expected a 'Max open files' line in /proc/self/limits, got ${JSON.stringify(match?.[0])}`);
  return Math.min(hard, 1_048_576);
}

export async function readChildPids(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8');
  return text
    .split(' ')
    .filter((part) => part !== '')
    .map(Number);
}

/** A port the kernel just handed out; released before returning, so a tiny race remains. */
export async function findFreePort(): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function canConnect(port: number): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
