import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTempDir, removeTempDirs, startPrimary, type RunningPrimary } from './helpers/mirror-cluster.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * Issue 13 part 4: a primary restarted on a tree it already ingested stats
 * every file and reads none that is unchanged (the start-up stat cache,
 * packages/primary/src/watch/stat-cache.ts). Counted from the primary's own
 * `source tree reconciled` log line (`filesRead`: source files opened and read).
 */
let primary: RunningPrimary | undefined;

afterEach(async () => {
  await primary?.kill();
  primary = undefined;
  await removeTempDirs();
});

const FILES = 400;
const p2 = (name: string, version: string): string =>
  JSON.stringify({ packages: { [name]: [{ name, version }] }, minified: 'composer/2.0' });

function reconciled(running: RunningPrimary): { files: number; filesRead: number; unchanged: number } {
  const line = running.logs.find((entry) => entry.msg === 'source tree reconciled');
  if (line === undefined) throw new Error(`no 'source tree reconciled' line in ${JSON.stringify(running.logs.slice(-5))}`);
  return { files: Number(line.files), filesRead: Number(line.filesRead), unchanged: Number(line.unchanged) };
}

/** Which of the two came first in the primary's log: 'listening' or 'source tree reconciled'. */
function firstOf(running: RunningPrimary): string | undefined {
  return running.logs.find((entry) => entry.msg === 'listening' || entry.msg === 'source tree reconciled')?.msg as string | undefined;
}

/** The start-up reconcile as /status/data.json reports it, once finished. */
async function startupFinished(url: string): Promise<{ files: number; filesRead: number; unchanged: number }> {
  let finished: { files: number; filesRead: number; unchanged: number } | undefined;
  await waitFor(
    async () => {
      const data = (await (await fetch(`${url}/status/data.json`)).json()) as { source: { startup?: { finished?: typeof finished } } };
      finished = data.source.startup?.finished;
      return finished !== undefined;
    },
    { what: 'the start-up reconcile to finish', timeoutMs: 60_000 },
  );
  return finished!;
}

async function served(url: string, path: string): Promise<string> {
  const response = await fetch(`${url}/${path}`);
  return `${response.status} ${await response.text()}`;
}

describe('primary restart on an ingested tree', () => {
  it('reads no unchanged file after a SIGKILL restart, and still reads and publishes what changed while it was down', async () => {
    const source = await makeTempDir('e2e-restart-source-');
    const dataDir = await makeTempDir('e2e-restart-data-');
    await mkdir(join(source, 'p2', 'acme'), { recursive: true });
    await Promise.all(
      Array.from({ length: FILES }, (_, i) => writeFile(join(source, 'p2', 'acme', `p${i}.json`), p2(`acme/p${i}`, '1.0.0'))),
    );
    await writeFile(join(source, 'packages.json'), '{"packages":[],"metadata-url":"/p2/%package%.json"}');
    // A file changed within the last 2 s is never trusted unread (two writes in one timestamp tick look
    // alike): the tree must be older than that for the first start to record it. Real time, the kernel's clock.
    const writtenMs = Date.now();
    await waitFor(async () => Date.now() - writtenMs > 2_100, { what: 'the tree to age past the racy window', timeoutMs: 5_000 });

    primary = await startPrimary({ dataDir, args: ['--source', source], readyTimeoutMs: 90_000 });
    // A first start listens once the tree is published: a mirror's first pull gets all of it.
    expect(firstOf(primary)).toBe('source tree reconciled');
    expect(reconciled(primary)).toMatchObject({ files: FILES + 1, filesRead: FILES + 1, unchanged: 0 });
    // Killed, not stopped: the cache is written by the start-up reconcile, not at shutdown.
    await primary.kill();
    primary = undefined;

    // Changed while the primary was down: new bytes of the same size with the old mtime put back
    // (as `rsync -t` or `touch -d` would): only ctime and the bytes tell; and a new file.
    const sneaky = join(source, 'p2', 'acme', 'p1.json');
    const before = await stat(sneaky);
    await writeFile(sneaky, p2('acme/p1', '9.0.0'));
    expect((await readFile(sneaky)).length).toBe(before.size);
    await utimes(sneaky, before.atime, before.mtime);
    await writeFile(join(source, 'p2', 'acme', 'p2.json'), p2('acme/p2', '2.0.0-longer'));
    await writeFile(join(source, 'p2', 'acme', 'new.json'), p2('acme/new', '1.0.0'));

    primary = await startPrimary({ dataDir, args: ['--source', source], readyTimeoutMs: 90_000 });
    // A restart serves its last generation at once and reconciles behind it.
    expect(firstOf(primary)).toBe('listening');
    expect(await startupFinished(primary.url)).toMatchObject({ files: FILES + 2, filesRead: 3, unchanged: FILES - 1 });
    // The status answers as soon as the reconcile ends; its log line reaches us through a pipe, maybe later.
    const restarted = primary;
    await waitFor(async () => restarted.logs.some((entry) => entry.msg === 'source tree reconciled'), {
      what: "the 'source tree reconciled' log line",
      timeoutMs: 10_000,
    });
    expect(reconciled(primary)).toEqual({ files: FILES + 2, filesRead: 3, unchanged: FILES - 1 });
    expect(await served(primary.url, 'p2/acme/p1.json')).toBe(`200 ${p2('acme/p1', '9.0.0')}`);
    expect(await served(primary.url, 'p2/acme/p2.json')).toBe(`200 ${p2('acme/p2', '2.0.0-longer')}`);
    expect(await served(primary.url, 'p2/acme/new.json')).toBe(`200 ${p2('acme/new', '1.0.0')}`);
    expect(await served(primary.url, 'p2/acme/p3.json')).toBe(`200 ${p2('acme/p3', '1.0.0')}`);
  }, 180_000);
});
