import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../../test/helpers/daemon.js';
import { startNginx } from '../../test/helpers/nginx.js';
import { runWrk, type WrkResult } from '../../test/helpers/wrk.js';
import type { Bench } from '../lib/bench.js';
import { startMirror } from '../lib/fleet.js';
import { httpRequest } from '../lib/http.js';
import { figure } from '../lib/report.js';
import { elapsedMs, median, nowNs } from '../lib/stats.js';

const ARCHIVES = 40;
const ARCHIVE_BYTES = 256 * 1024;
const TOKEN = 'bench-dists-token';

/**
 * Dist archives through a mirror (issue 15), against nginx serving the same files:
 *
 *   first fetch   GET /dists/<package>/<ref>.zip on a cold mirror: origin fetch (nginx here) + sha256/sha1
 *                 + fsync + pin report to the primary + serve; baseline: the same GET straight from nginx.
 *                 Median over the archives, one at a time.
 *   cached        wrk, random archives, `--connections`, against the mirror's /dists/ and nginx's files.
 *
 * Random bytes, not zips: the mirror never reads an archive's content. No core pinning here (the
 * figure is the cost of the archive path, not the serve target of the serve bench).
 */
export const distsBench: Bench = async (ctx) => {
  const root = join(ctx.workDir, 'dists-origin');
  const paths: string[] = [];
  const refs: string[] = [];
  for (let i = 0; i < ARCHIVES; i++) {
    const reference = createHash('sha1').update(`ref-${i}`).digest('hex');
    const path = `/acme/p${i}/${reference}.zip`;
    await mkdir(join(root, `acme/p${i}`), { recursive: true });
    await writeFile(join(root, path), randomBytes(ARCHIVE_BYTES));
    paths.push(path);
    refs.push(reference);
  }
  const nginx = await startNginx({ root, prefix: join(ctx.workDir, 'dists-nginx') });
  ctx.defer(() => nginx.stop());
  const primary: Daemon = await startDaemon({
    bin: 'primary',
    args: ['--data', join(ctx.workDir, 'dists-primary'), '--listen', '127.0.0.1:0', '--dists-url', 'http://dists.invalid'],
    env: { METASYNC_PUBLISH_TOKEN: TOKEN },
  });
  ctx.defer(() => primary.stop());
  for (let i = 0; i < ARCHIVES; i++) {
    const response = await fetch(`${primary.url}/api/v1/packages/acme/p${i}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ versions: [{ version: '1.0.0', dist: { type: 'zip', url: `${nginx.url}${paths[i]}`, reference: refs[i] } }] }),
    });
    if (!response.ok) throw new Error(`publishing acme/p${i} answered ${response.status}`);
  }
  const mirror = await startMirror({
    primaryUrl: primary.url,
    dataDir: join(ctx.workDir, 'dists-mirror'),
    hotCacheMib: ctx.options.hotCacheMib,
    malloc: ctx.options.malloc,
    publishToken: TOKEN,
    mirrorId: 'bench-dists',
    extraArgs: ['--dist-allow-hosts', '127.0.0.1', '--dist-allow-private'],
  });
  ctx.defer(() => mirror.stop());
  const lastP2 = `${mirror.url}/p2/acme/p${ARCHIVES - 1}.json`;
  for (let attempt = 0; attempt < 600; attempt++) {
    const probe = await httpRequest(lastP2);
    if (probe.status === 200 && probe.headers['x-metasync-proxied'] === undefined) break;
    if (attempt === 599) throw new Error(`mirror did not apply the dists corpus (${lastP2})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  const timeGet = async (url: string): Promise<number> => {
    const startNs = nowNs();
    const response = await httpRequest(url);
    if (response.status !== 200 || response.body.length !== ARCHIVE_BYTES)
      throw new Error(`GET ${url} answered ${response.status}, ${response.body.length} bytes`);
    return elapsedMs(startNs);
  };
  const coldMirror: number[] = [];
  const nginxDirect: number[] = [];
  for (let i = 0; i < ARCHIVES; i++) {
    nginxDirect.push(await timeGet(`${nginx.url}${paths[i]}`));
    coldMirror.push(await timeGet(`${mirror.url}/dists/acme/p${i}/${refs[i]}.zip`));
  }

  const wrk = async (url: string, wrkPaths: string[]): Promise<WrkResult> => {
    const common = { url, paths: wrkPaths, connections: ctx.options.connections, threads: ctx.options.wrkThreads, seed: ctx.options.seed };
    if (ctx.options.wrkWarmupSeconds > 0) await runWrk({ ...common, durationSec: ctx.options.wrkWarmupSeconds });
    return await runWrk({ ...common, durationSec: ctx.options.wrkSeconds });
  };
  const mirrorPaths = paths.map((_, i) => `/dists/acme/p${i}/${refs[i]}.zip`);
  const cachedMirror = await wrk(mirror.url, mirrorPaths);
  const cachedNginx = await wrk(nginx.url, paths);
  const errors = cachedMirror.statusErrors + cachedMirror.socketErrors;

  return {
    title: `dist archives: ${ARCHIVES} x ${ARCHIVE_BYTES / 1024} KiB through a mirror`,
    params: { archives: ARCHIVES, archiveBytes: ARCHIVE_BYTES, connections: ctx.options.connections, wrkSeconds: ctx.options.wrkSeconds },
    figures: [
      figure({
        metric: 'first fetch (cold mirror: origin + verify + fsync + pin + serve), median',
        unit: 'ms',
        metasync: median(coldMirror),
        baseline: { name: 'the same GET from the origin nginx', value: median(nginxDirect) },
        ratioOf: 'metasync/baseline',
      }),
      figure({
        metric: 'cached archives, req/s',
        unit: 'req/s',
        metasync: cachedMirror.requestsPerSec,
        baseline: { name: 'nginx serving the same files', value: cachedNginx.requestsPerSec },
        ratioOf: 'metasync/baseline',
      }),
      figure({
        metric: 'cached archives, p99',
        unit: 'ms',
        metasync: cachedMirror.latencyP99Ms,
        baseline: { name: 'nginx p99', value: cachedNginx.latencyP99Ms },
        ratioOf: 'metasync/baseline',
      }),
      figure({
        metric: 'mirror error responses under wrk',
        unit: 'count',
        metasync: errors,
        target: { text: '0', on: 'value', atMost: 0 },
      }),
    ],
    notes: [
      `throughput: mirror ${(cachedMirror.bytesPerSec / 2 ** 20).toFixed(0)} MiB/s, nginx ${(cachedNginx.bytesPerSec / 2 ** 20).toFixed(0)} MiB/s`,
      'no core pinning: both servers and wrk share the machine',
    ],
  };
};
