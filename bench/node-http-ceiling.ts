/**
 * `node --conditions=source --import tsx bench/node-http-ceiling.ts [seconds] [files]` (defaults 10, 2000)
 *
 * The most a Node server can serve on this machine, against nginx, in the same run: the ceiling under the
 * serve bench's mirror figure (issue 13 asks for >= 1.0x nginx with equal workers). Three servers answer the
 * same gzip'd files on one pinned core each, one at a time, to wrk on the other core (64 connections,
 * random paths, the same seed):
 *
 *   nginx        1 worker, gzip_static, open_file_cache (test/helpers/nginx.ts, as the serve bench)
 *   node http    node:http, every answer a prebuilt header list and body from a Map: writeHead + end, nothing
 *                else (no index, no conditional requests, no metrics): what Node's HTTP layer alone costs
 *   mirror-like  the mirror as the serve bench runs it is not started here: compare with its figure
 *
 * Prints req/s, p99 and CPU µs per request of each, and the ratio to nginx.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { startNginx } from '../test/helpers/nginx.js';
import { readProcCpuMs } from '../test/helpers/proc-stats.js';
import { runWrk, type WrkResult } from '../test/helpers/wrk.js';

const execFileAsync = promisify(execFile);
const seconds = Number(process.argv[2] ?? 10);
const fileCount = Number(process.argv[3] ?? 2000);

/** The bare server, run in its own process: files from argv[2] (JSON lines of [path, base64 gzip body]). */
const BARE_SERVER = `
const http = require('node:http');
const fs = require('node:fs');
const answers = new Map();
for (const line of fs.readFileSync(process.argv[2], 'utf8').split('\\n')) {
  if (line === '') continue;
  const [path, b64] = JSON.parse(line);
  const body = Buffer.from(b64, 'base64');
  answers.set(path, { body, headers: ['content-type', 'application/json', 'content-encoding', 'gzip', 'vary', 'Accept-Encoding',
    'etag', '"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"', 'last-modified', 'Mon, 07 Dec 2026 20:00:00 GMT',
    'cache-control', 'public, max-age=60', 'content-length', String(body.length)] });
}
const server = http.createServer({ keepAliveTimeout: 65000 }, (req, res) => {
  const answer = answers.get(req.url);
  if (answer === undefined) { res.writeHead(404, ['content-length', '0']); res.end(); return; }
  res.writeHead(200, answer.headers);
  res.end(answer.body);
});
server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port));
`;

function fileBody(i: number): Buffer {
  // A Composer p2 file of a few KB, as most of a Packagist corpus is.
  const versions = Array.from({ length: 3 + (i % 9) }, (_, v) => ({
    name: `vendor${i % 97}/package-${i}`,
    version: `1.${v}.0`,
    require: { php: '>=8.1', [`vendor${(i + v) % 97}/dep`]: `^${v}.0` },
    dist: { type: 'zip', url: `https://example.invalid/vendor${i % 97}/package-${i}/1.${v}.0.zip`, shasum: '' },
  }));
  return Buffer.from(JSON.stringify({ packages: { [`vendor${i % 97}/package-${i}`]: versions }, minified: 'composer/2.0' }));
}

async function cpuOf(pids: number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) total += await readProcCpuMs(pid);
  return total;
}

const work = await mkdtemp(join(tmpdir(), 'metasync-ceiling-'));
try {
  const root = join(work, 'root');
  const lines: string[] = [];
  const paths: string[] = [];
  for (let i = 0; i < fileCount; i++) {
    const path = `/p2/vendor${i % 97}/package-${i}.json`;
    const raw = fileBody(i);
    const gz = gzipSync(raw, { level: 9 });
    await mkdir(join(root, `p2/vendor${i % 97}`), { recursive: true });
    await writeFile(join(root, path), raw);
    await writeFile(join(root, `${path}.gz`), gz);
    lines.push(JSON.stringify([path, gz.toString('base64')]));
    paths.push(path);
  }
  await writeFile(join(work, 'answers.jsonl'), `${lines.join('\n')}\n`);
  await writeFile(join(work, 'bare.cjs'), BARE_SERVER);
  const wrk = (url: string): Promise<WrkResult> =>
    runWrk({ url, paths, connections: 64, durationSec: seconds, headers: { 'accept-encoding': 'gzip' }, seed: 7, cpuList: '1' });

  const results: { name: string; result: WrkResult; cpuUs: number }[] = [];
  const nginx = await startNginx({ root, prefix: join(work, 'nginx') });
  try {
    const workers = await nginx.workerPids();
    for (const pid of workers) await execFileAsync('taskset', ['-a', '-cp', '0', String(pid)]);
    await wrk(nginx.url); // warm-up: open_file_cache, page cache
    const before = await cpuOf(workers);
    const result = await wrk(nginx.url);
    results.push({ name: 'nginx, 1 worker', result, cpuUs: (((await cpuOf(workers)) - before) * 1000) / result.requests });
  } finally {
    await nginx.stop();
  }
  const bare = spawn(process.execPath, [join(work, 'bare.cjs'), join(work, 'answers.jsonl')], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      bare.stdout.once('data', (data: Buffer) => resolve(Number(/port (\d+)/.exec(data.toString())?.[1])));
      bare.once('exit', (code) => reject(new Error(`bare server exited ${code}`)));
    });
    await execFileAsync('taskset', ['-a', '-cp', '0', String(bare.pid)]);
    const url = `http://127.0.0.1:${port}`;
    await wrk(url); // warm-up: the JIT
    const before = await cpuOf([bare.pid!]);
    const result = await wrk(url);
    results.push({ name: 'node:http, writeHead + end', result, cpuUs: (((await cpuOf([bare.pid!])) - before) * 1000) / result.requests });
  } finally {
    bare.kill();
  }
  const nginxRps = results[0]!.result.requestsPerSec;
  const nginxP99 = results[0]!.result.latencyP99Ms;
  console.log(`${fileCount} gzip'd p2 files, 64 connections, ${seconds} s each, server on cpu 0, wrk on cpu 1`);
  for (const { name, result, cpuUs } of results) {
    console.log(
      `  ${name.padEnd(28)} ${result.requestsPerSec.toFixed(0).padStart(7)} req/s (${(result.requestsPerSec / nginxRps).toFixed(2)}x nginx)  p99 ${result.latencyP99Ms.toFixed(2)} ms (${(result.latencyP99Ms / nginxP99).toFixed(2)}x)  ${cpuUs.toFixed(1)} µs CPU a request`,
    );
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
