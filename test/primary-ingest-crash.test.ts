import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeArgsFor } from './helpers/daemon.js';
import { makeTempDir, primaryStateAt, removeTempDirs, startPrimary, type RunningPrimary } from './helpers/mirror-cluster.js';

/**
 * Issue 13 parts 3-4 changed how the store writes objects (temp + rename, one
 * barrier per generation). A primary SIGKILLed right after its start-up ingest
 * committed a generation must, restarted, hold every object of every committed
 * generation, each hashing to its address: the barrier ran before the commit.
 */
const FILES = 2_600; // more than one submit (2,000 paths): the kill lands after the first commit, mid-ingest

let primary: RunningPrimary | undefined;
afterEach(async () => {
  await primary?.kill();
  primary = undefined;
  await removeTempDirs();
});

describe('primary killed right after an ingest commit', () => {
  it('restarts holding every object of the committed generations, each matching its sha256', async () => {
    const source = await makeTempDir('e2e-ingest-crash-source-');
    const dataDir = await makeTempDir('e2e-ingest-crash-data-');
    await mkdir(join(source, 'p2', 'acme'), { recursive: true });
    const pad = 'x'.repeat(2_000);
    for (let i = 0; i < FILES; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, FILES - i) }, (_, k) =>
          writeFile(
            join(source, 'p2', 'acme', `p${i + k}.json`),
            JSON.stringify({ packages: { [`acme/p${i + k}`]: [{ version: '1.0.0', description: `${i + k} ${pad}` }] } }),
          ),
        ),
      );
    }

    // Spawned by hand: the helpers wait for `listening`, which comes only after the whole ingest.
    const child = spawn(process.execPath, nodeArgsFor('primary', ['--data', dataDir, '--source', source, '--listen', '127.0.0.1:0']), {
      env: { ...process.env, METASYNC_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const committedSeq = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no `source changes published` line within 120 s')), 120_000);
      createInterface({ input: child.stdout }).on('line', (line) => {
        const entry = JSON.parse(line) as { msg?: string; seq?: number };
        if (entry.msg === 'source changes published' && entry.seq !== undefined) {
          child.kill('SIGKILL');
          clearTimeout(timer);
          resolve(entry.seq);
        }
      });
    });
    await exited;

    // Restarted without --source: nothing new is written, the store is as the kill left it.
    primary = await startPrimary({ dataDir });
    const head = Number(((await (await fetch(`${primary.url}/sync/v1/state`)).json()) as { seq: number }).seq);
    expect(head).toBeGreaterThanOrEqual(committedSeq);
    const state = await primaryStateAt(primary.url, head);
    expect(state.size).toBeGreaterThanOrEqual(2_000);
    expect(state.size).toBeLessThan(FILES); // killed mid-ingest, as intended
    const bad: string[] = [];
    const shas = [...new Set(state.values())];
    for (let i = 0; i < shas.length; i += 50) {
      await Promise.all(
        shas.slice(i, i + 50).map(async (sha256) => {
          const response = await fetch(`${primary!.url}/sync/v1/objects/${sha256}`, { headers: { 'accept-encoding': 'identity' } });
          const body = Buffer.from(await response.arrayBuffer());
          if (response.status !== 200 || createHash('sha256').update(body).digest('hex') !== sha256)
            bad.push(`${sha256}: ${response.status}`);
        }),
      );
    }
    expect(bad.slice(0, 10)).toEqual([]);

    // With --source again: that tree was never published whole (no start-up reconcile finished), so unlike a
    // restart of a reconciled primary this one listens only once all of it is committed.
    await primary.kill();
    primary = await startPrimary({ dataDir, args: ['--source', source], readyTimeoutMs: 120_000 });
    expect(primary.logs.find((entry) => entry.msg === 'listening' || entry.msg === 'source tree reconciled')?.msg).toBe(
      'source tree reconciled',
    );
    const wholeHead = Number(((await (await fetch(`${primary.url}/sync/v1/state`)).json()) as { seq: number }).seq);
    expect((await primaryStateAt(primary.url, wholeHead)).size).toBe(FILES);
  }, 240_000);
});
