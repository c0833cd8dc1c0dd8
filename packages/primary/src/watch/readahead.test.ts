import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createReadahead } from './readahead.js';

let base: string;

beforeEach(async () => {
  base = await realpath(await mkdtemp(join(tmpdir(), 'metasync-readahead-')));
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('readahead', () => {
  it('skips what it must not block on or read (a FIFO, a directory, a large or missing file) and closes at once', async () => {
    await mkdir(join(base, 'dir'));
    execFileSync('mkfifo', [join(base, 'pipe.json')]);
    await writeFile(join(base, 'big.json'), Buffer.alloc(4096));
    await writeFile(join(base, 'ok.json'), '{}');
    const readahead = createReadahead({ rootReal: base, maxFileBytes: 1024 });
    for (const path of ['pipe.json', 'dir', 'big.json', 'gone.json', 'ok.json']) readahead.hint(path);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // A thread stuck in open(2) on the FIFO could not be terminated: close would hang.
    const started = Date.now();
    await readahead.close();
    expect(Date.now() - started).toBeLessThan(2_000);
    readahead.hint('ok.json'); // after close: ignored, no throw
  });
});
