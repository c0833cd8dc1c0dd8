import { writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Publisher } from '../publish/publisher.js';
import type { SourceIngest } from './ingest.js';
import { reconcileAtStart } from './startup-reconcile.js';
import { removeUnlessBack } from './walk-deletions.js';

let root: string;
let calls: string[];
const ingest = { touch: (path: string) => void calls.push(`touch ${path}`), remove: (path: string) => void calls.push(`remove ${path}`) };

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'metasync-walk-deletions-'));
  calls = [];
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('deleting what a walk did not find', () => {
  it('removes a path that is absent or a directory now, and touches one that is a file or a link again', async () => {
    await mkdir(join(root, 'p2/acme'), { recursive: true });
    await writeFile(join(root, 'p2/acme/back.json'), '{}');
    await symlink('back.json', join(root, 'p2/acme/link.json'));
    await mkdir(join(root, 'p2/acme/now-a-dir.json'));
    expect(removeUnlessBack(root, 'p2/acme/gone.json', ingest)).toBe(true);
    expect(removeUnlessBack(root, 'p2/acme/now-a-dir.json', ingest)).toBe(true);
    expect(removeUnlessBack(root, 'p2/acme/back.json', ingest)).toBe(false);
    expect(removeUnlessBack(root, 'p2/acme/link.json', ingest)).toBe(false);
    expect(calls).toEqual([
      'remove p2/acme/gone.json',
      'remove p2/acme/now-a-dir.json',
      'touch p2/acme/back.json',
      'touch p2/acme/link.json',
    ]);
  });

  it('removes a path below a directory that became a symbolic link, which a walk does not enter', async () => {
    await mkdir(join(root, 'releases/r2/acme'), { recursive: true });
    await writeFile(join(root, 'releases/r2/acme/x.json'), '{}');
    await mkdir(join(root, 'p2'));
    await symlink(join(root, 'releases/r2/acme'), join(root, 'p2/acme'));
    expect(removeUnlessBack(root, 'p2/acme/x.json', ingest)).toBe(true);
    expect(removeUnlessBack(root, 'releases/r2/acme/x.json', ingest)).toBe(false);
    expect(calls).toEqual(['remove p2/acme/x.json', 'touch releases/r2/acme/x.json']);
  });

  it('at start-up, a file created again after the walk passed its directory is read, not unpublished', async () => {
    await mkdir(join(root, 'p2/acme'), { recursive: true });
    await writeFile(join(root, 'p2/acme/kept.json'), '{}');
    const published = ['p2/acme/kept.json', 'p2/acme/again.json', 'p2/acme/gone.json'];
    const publisher = {
      *pathsFrom() {
        // Deleted before the walk read p2/acme, created again right after: what the deletion pass meets.
        writeFileSync(join(root, 'p2/acme/again.json'), '{"again":true}');
        yield* published;
      },
      getEntry: () => undefined,
    };
    const fakeIngest = {
      ...ingest,
      hold: () => undefined,
      release: () => undefined,
      roomFor: async () => undefined,
      settled: async () => undefined,
      idle: async () => undefined,
    };
    const result = await reconcileAtStart({
      rootReal: root,
      publisher: publisher as unknown as Publisher,
      ingest: fakeIngest as unknown as SourceIngest,
      onDirectory: () => undefined,
      statCacheDir: undefined,
      nextCache: undefined,
      stopped: () => false,
      log: { warn: () => undefined } as never,
    });
    expect(calls.filter((call) => !call.endsWith('kept.json'))).toEqual(['touch p2/acme/again.json', 'remove p2/acme/gone.json']);
    expect(result.deleted).toBe(1);
  });
});
