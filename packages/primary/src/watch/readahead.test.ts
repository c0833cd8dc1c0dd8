import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../../test/helpers/wait-for.js';
import { createReadahead } from './readahead.js';

let base: string;

beforeEach(async () => {
  base = await realpath(await mkdtemp(join(tmpdir(), 'metasync-readahead-')));
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('readahead', () => {
  it('reads only regular files inside the tree within the limit, never blocks on a FIFO, and closes at once', async () => {
    const root = join(base, 'root');
    await mkdir(join(root, 'dir'), { recursive: true });
    execFileSync('mkfifo', [join(root, 'pipe.json')]);
    await writeFile(join(root, 'big.json'), Buffer.alloc(4096));
    await writeFile(join(root, 'ok.json'), '{}');
    await writeFile(join(base, 'outside.json'), '{}');
    await symlink(join(base, 'outside.json'), join(root, 'out.json'));
    await symlink('/dev/zero', join(root, 'zero.json'));
    const readahead = createReadahead({ rootReal: root, maxFileBytes: 1024 });
    const paths = ['pipe.json', 'dir', 'big.json', 'gone.json', 'out.json', 'zero.json', 'ok.json'];
    for (const path of paths) readahead.hint(path);
    await waitFor(() => readahead.stats().done === paths.length, { what: 'the hints gone through', timeoutMs: 5_000 });
    expect(readahead.stats()).toEqual({ hinted: paths.length, warmed: 1, done: paths.length, dropped: 0 });
    // A thread stuck in open(2) on the FIFO could not be terminated: close would hang.
    const started = Date.now();
    await readahead.close();
    expect(Date.now() - started).toBeLessThan(2_000);
    readahead.hint('ok.json'); // after close: ignored, no throw
    expect(readahead.stats().hinted).toBe(paths.length);
  });
});
