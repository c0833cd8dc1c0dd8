import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { sha256Hex } from '@metasync/shared';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../../../test/helpers/wait-for.js';
import { createSourceWatchStatus } from './watch-status.js';
import { useWatcherFixture } from './watcher-fixture.js';

/** How the watcher reads what it publishes: the bytes it stores, how often it reads, at what volume. */
const t = useWatcherFixture();

describe('watched source tree: reads', () => {
  it.each([0, 1])('with --dists-url, stores the gzip the watcher made of the rewritten bytes (prepare threads: %i)', async (threads) => {
    const distsUrl = 'https://dists.example';
    await t.open({ distsUrl });
    await t.startWatching({ distsUrl, storeDir: t.core!.publisher.store.dir, prepareThreads: threads });
    const name = 'acme/dist';
    const doc = { packages: { [name]: [{ name, version: '1.0.0', dist: { type: 'zip', url: 'https://x/a.zip', reference: 'r1' } }] } };
    await mkdir(join(t.source, 'p2', 'acme'), { recursive: true });
    await writeFile(join(t.source, 'p2', 'acme', 'dist.json'), JSON.stringify(doc).padEnd(300, ' '));
    const entry = await waitFor(() => t.entryOf('p2/acme/dist.json'), { what: 'p2 file published', timeoutMs: 10_000 });
    const gz = gunzipSync(await t.core!.publisher.store.readVariant(entry.sha256, 'gzip')).toString();
    expect(gz).toContain('https://dists.example/dists/%package%/%reference%.%type%');
    expect(sha256Hex(Buffer.from(gz))).toBe(entry.sha256);
  });

  it('stops reading event-written files once their rechecks see them unchanged', async () => {
    await t.open();
    const status = createSourceWatchStatus();
    await t.startWatching({ status });
    const count = 50;
    for (let i = 0; i < count; i++) await writeFile(join(t.source, 'include', 'acme', `r${i}.json`), `{"r":${i}}`);
    await waitFor(() => [...t.core!.publisher.entries()].filter(([path]) => path.includes('/r')).length === count, {
      what: `${count} files published`,
      timeoutMs: 10_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 400)); // past the last recheck (150 ms)
    const settled = status.snapshot().filesRead;
    await new Promise((resolve) => setTimeout(resolve, 600));
    // Before the rechecks compared like with like, every file was read again every 20 ms, for good.
    expect(status.snapshot().filesRead).toBe(settled);
    expect(settled).toBeLessThanOrEqual(3 * count + 10);
  });

  it('takes a burst of 10,000 files in far fewer generations than files, prepared in a thread', async () => {
    await t.open();
    await t.startWatching({ prepareThreads: 1, storeDir: t.core!.publisher.store.dir });
    const seqBefore = t.core!.publisher.headSeq();
    const startedMs = Date.now();
    const count = 10_000;
    for (let d = 0; d < 100; d++) await mkdir(join(t.source, 'include', `v${d}`));
    for (let i = 0; i < count; i += 500) {
      await Promise.all(
        Array.from({ length: 500 }, (_, k) =>
          writeFile(join(t.source, 'include', `v${(i + k) % 100}`, `p${i + k}.json`), `{"n":${i + k}}`),
        ),
      );
    }
    await waitFor(() => [...t.core!.publisher.entries()].length === count, {
      what: `${count} files published`,
      timeoutMs: 150_000,
      intervalMs: 100,
    });
    const generations = t.core!.publisher.headSeq() - seqBefore;
    console.log(`burst: ${count} files in ${generations} generations, ${Date.now() - startedMs} ms`);
    expect(generations).toBeLessThan(count / 20);
  }, 180_000);
});
