import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from './helpers/cluster.js';
import { runCli, type CliResult } from './helpers/cli.js';
import { waitFor } from './helpers/wait-for.js';

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runCli(args, { env });
}

describe('metasync verify (real primary and mirror)', () => {
  let cluster: Cluster;
  let mirrorUrl: string;
  let dataDir: string;

  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.publish('acme/widget', '1.0.0');
    await cluster.publish('acme/gadget', '2.0.0');
    await cluster.publish('acme/widget', '1.1.0');
    // No hot cache, so a served file comes from disk like after a restart.
    const mirror = await cluster.startMirror({ mirrorId: 'v1', region: 'eu', args: ['--hot-cache-bytes', '0'] });
    mirrorUrl = mirror.daemon.url;
    dataDir = mirror.dataDir;
    const head = await cluster.headSeq();
    await waitFor(
      async () => Number((await fetch(`${mirrorUrl}/packages.json`, { method: 'HEAD' })).headers.get('x-metasync-seq')) >= head,
      {
        timeoutMs: 15_000,
        what: `mirror at seq ${head}`,
      },
    );
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('reports no differences for an intact mirror', async () => {
    const result = await cli(['verify', '--primary', cluster.primary.url, '--url', mirrorUrl, '--data', dataDir]);
    expect(result.stderr).not.toContain('METASYNC_ERR');
    expect(result.stdout).toContain('no differences');
    expect(result.code).toBe(0);
  }, 60_000);

  it('finds a file that was tampered with on disk, by path and by object, and exits 6', async () => {
    const body = Buffer.from(
      await (await fetch(`${mirrorUrl}/p2/acme/widget.json`, { headers: { 'accept-encoding': 'identity' } })).arrayBuffer(),
    );
    const hash = createHash('sha256').update(body).digest('hex');
    // The object's one file: its gzip variant.
    const objectPath = join(dataDir, 'objects', hash.slice(0, 2), `${hash.slice(2)}.gz`);
    const tampered = Buffer.from(body);
    tampered[tampered.length - 2] = tampered[tampered.length - 2] === 0x20 ? 0x21 : 0x20;
    await writeFile(objectPath, gzipSync(tampered));

    const result = await cli(['verify', '--primary', cluster.primary.url, '--url', mirrorUrl, '--data', dataDir, '--json']);
    expect(result.code, result.stderr).toBe(6);
    const report = JSON.parse(result.stdout) as { differences: { path: string; problem: string; expected: string }[] };
    expect(report.differences).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: `objects/${hash}.gz`, problem: 'object-corrupt', expected: hash }),
        expect.objectContaining({ path: 'p2/acme/widget.json', problem: 'hash-mismatch', expected: hash }),
      ]),
    );
    expect(report.differences.every((d) => d.path.includes(hash) || d.path === 'p2/acme/widget.json')).toBe(true);
  }, 60_000);
});
