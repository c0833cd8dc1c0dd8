/**
 * Figures of a `--upstream` bootstrap (docs/operations.md, "Mirror packagist.org"):
 * a loopback packagist.org double (test/helpers/packagist-double.ts) holding a
 * generated Packagist-like corpus, each answer optionally delayed like a WAN
 * round trip, and the built primary following it from an empty data dir.
 * Reports spawn -> /health/upstream fresh, in p2 requests/s and files committed/s.
 *
 *   pnpm build && node --conditions=source --import tsx bench/upstream-bootstrap.ts --packages 20000 --concurrency 16 --delay-ms 0
 *
 * A report, not a test; everything binds 127.0.0.1 and is stopped at the end.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateCorpus, renderCorpusPackage } from '../test/helpers/corpus.js';
import { startDaemon } from '../test/helpers/daemon.js';
import { startPackagistDouble } from '../test/helpers/packagist-double.js';
import { readProcCpuMs, readProcMemory } from '../test/helpers/proc-stats.js';

const { values } = parseArgs({
  options: {
    packages: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '16' },
    'delay-ms': { type: 'string', default: '0' },
    'timeout-s': { type: 'string', default: '1800' },
  },
});
const packages = Number(values.packages);
const double = await startPackagistDouble();
const names: string[] = [];
let files = 0;
let bytes = 0;
for (const pkg of generateCorpus({ packages, seed: 7 }).packages) {
  names.push(pkg.name);
  for (const { path, content } of renderCorpusPackage(pkg)) {
    const key = /^p2\/(.+)\.json$/.exec(path)?.[1];
    if (key === undefined) continue;
    double.put(key, content, { silent: true });
    files++;
    bytes += content.length;
  }
}
double.setList(names);
double.setDelayMs(Number(values['delay-ms']));
const dataDir = await mkdtemp(join(tmpdir(), 'metasync-upstream-bench-'));
const startedMs = performance.now();
const benchCpuStart = process.cpuUsage();
const follower = await startDaemon({
  bin: 'primary',
  args: ['--data', dataDir, '--listen', '127.0.0.1:0', '--upstream', double.url, '--upstream-concurrency', String(values.concurrency)],
  readyTimeoutMs: 60_000,
});
try {
  const deadline = Date.now() + Number(values['timeout-s']) * 1000;
  for (;;) {
    const response = await fetch(`${follower.url}/health/upstream`);
    if (response.status === 200) break;
    if (Date.now() > deadline) throw new Error(`bootstrap not fresh after ${values['timeout-s']} s: ${await response.text()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const seconds = (performance.now() - startedMs) / 1000;
  const followerCpuMs = await readProcCpuMs(follower.child.pid!);
  const followerRssMiB = Math.round((await readProcMemory(follower.child.pid!)).rssBytes / 1048576);
  const benchCpu = process.cpuUsage(benchCpuStart);
  const requests = double.requests().filter((r) => r.path.startsWith('/repo/p2/')).length;
  console.log(
    JSON.stringify({
      packages,
      p2Files: files,
      p2Bytes: bytes,
      p2Requests: requests,
      concurrency: Number(values.concurrency),
      delayMs: Number(values['delay-ms']),
      seconds: Number(seconds.toFixed(2)),
      requestsPerSecond: Math.round(requests / seconds),
      filesPerSecond: Math.round(files / seconds),
      // Where the time went: the follower's CPU, and the double's (this process: it gzips every answer).
      followerCpuSeconds: Number((followerCpuMs / 1000).toFixed(1)),
      followerRssMiB,
      doubleCpuSeconds: Number(((benchCpu.user + benchCpu.system) / 1e6).toFixed(1)),
      loadAverage1m: Number((await import('node:os')).loadavg()[0]!.toFixed(1)),
    }),
  );
} finally {
  await follower.stop();
  await double.close();
  await rm(dataDir, { recursive: true, force: true });
}
