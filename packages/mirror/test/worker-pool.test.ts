import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '@metasync/shared/daemon';
import { emptyIndex } from '../src/index/index-state.js';
import { MIRROR_HTTP_LIMITS } from '../src/serve/http-limits.js';
import { createWorkerCounters } from '../src/workers/worker-counters.js';
import { startWorkerPool, type WorkerPool } from '../src/workers/worker-pool.js';

/**
 * The pool's crash policy with real threads and real sockets: each thread
 * listens on the pool's port with reusePort, as a serving worker does, and
 * dies of an uncaught exception on GET /crash (no serving worker has such a
 * route: the crash stands for any defect that kills a thread).
 */
const CRASHING_THREAD = `
import { createServer } from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';
const server = createServer((req, res) => {
  if (req.url === '/crash') throw new Error('thread crash on purpose');
  res.end('worker ' + workerData.worker);
});
server.listen({ host: workerData.listen.host, port: workerData.listen.port, reusePort: true }, () =>
  parentPort.postMessage({ type: 'listening', port: server.address().port }),
);
parentPort.on('message', (message) => {
  if (message.type === 'close') server.close(() => parentPort.close());
});
`;

let pool: WorkerPool | undefined;
let dir: string | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

function get(url: string): Promise<{ status: number; body: string } | 'failed'> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve('failed'));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve('failed'));
    req.end();
  });
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('worker pool', () => {
  it('restarts a crashed worker on the same port while the other serves, at most 5 times a minute each, then gives up', async () => {
    dir = await mkdtemp(join(tmpdir(), 'metasync-pool-'));
    const script = join(dir, 'crashing-thread.mjs');
    await writeFile(script, CRASHING_THREAD);
    const logs: { msg: string; worker?: number }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(JSON.parse(line) as { msg: string });
        done();
      },
    });
    let fatal = 0;
    pool = await startWorkerPool({
      count: 2,
      app: Fastify(),
      sharing: emptyIndex(0, { shared: true }).sharing!,
      counters: createWorkerCounters(2),
      listen: { host: '127.0.0.1', port: 0 },
      tls: undefined,
      httpLimits: MIRROR_HTTP_LIMITS,
      hotCacheBytes: 0,
      objectsDir: dir,
      logLevel: 'silent',
      logger: createLogger({ name: 'pool-test', level: 'info' }, sink),
      onFatal: () => fatal++,
      script: pathToFileURL(script),
    });
    const url = pool.url;
    const exits = (): number =>
      logs.filter((l) => l.msg === 'serving worker exited: restarting it' || l.msg.startsWith('serving worker keeps failing')).length;
    const givenUp = (): number => logs.filter((l) => l.msg.startsWith('serving worker keeps failing')).length;
    let crashes = 0;
    for (let i = 0; i < 40 && fatal === 0; i++) {
      const before = exits();
      // Fresh connections land on either thread: one crash per request that reaches one.
      if ((await get(`${url}/crash`)) !== 'failed') continue;
      crashes++;
      await until(() => exits() > before, 'the crash to be seen');
      await until(() => fatal > 0 || pool!.running() === 2 - givenUp(), 'the worker to be back');
      if (fatal === 0) {
        // Still serving between crashes, on the same address.
        const answer = await get(`${url}/`);
        expect(answer !== 'failed' && answer.status === 200).toBe(true);
      }
    }
    expect(logs.filter((l) => l.msg === 'serving worker restarted')).toHaveLength(10);
    expect(givenUp()).toBe(2);
    expect(crashes).toBe(12);
    expect(fatal).toBe(1);
    expect(pool.running()).toBe(0);
  }, 60_000);
});
