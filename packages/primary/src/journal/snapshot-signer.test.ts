import { mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKeyPem, sha256Hex, signingKeyFromPem } from '@metasync/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createManifest, type Manifest } from './manifest.js';
import { decodeSnapshotBody } from './snapshot-body.js';
import { writeSignedSnapshotFile, type SignedSnapshot } from './snapshot-file.js';
import { signSnapshotOffThread } from './snapshot-signer.js';
import { readSnapshotBody } from './snapshots.js';

const key = signingKeyFromPem(generateSigningKeyPem());
const ORIGINS = ['watch', 'api', 'upstream', 'pins'] as const;
const SHA = (text: string): string => sha256Hex(text);

function filled(paths: number): Manifest {
  const manifest = createManifest();
  for (let i = 0; i < paths; i++) {
    manifest.set(`p2/vendor${i % 37}/package-${i}.json`, {
      sha256: SHA(String(i)),
      size: i,
      mtime: 1_700_000_000_000 + i,
      origin: ORIGINS[i % 4]!,
    });
  }
  // Freed ids, and a path whose line is built as a string (it needs escaping) rather than copied.
  for (let i = 0; i < paths; i += 7) manifest.delete(`p2/vendor${i % 37}/package-${i}.json`);
  manifest.set('p2/odd/quo"te.json', { sha256: SHA('odd'), size: 3, mtime: 5, origin: 'api' });
  return manifest;
}

async function pathsOf(snapshot: SignedSnapshot): Promise<string[]> {
  const paths: string[] = [];
  decodeSnapshotBody(await readSnapshotBody(snapshot), (entry) => paths.push(entry.path));
  return paths;
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-snapshot-signer-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The manifest as it is now, written and signed on this thread into a directory of its own: the whole file's bytes. */
function signedHere(manifest: Manifest, seq: number, time: number): Buffer {
  const here = join(dir, 'here');
  mkdirSync(here, { recursive: true });
  return readFileSync(writeSignedSnapshotFile({ dir: here, seq, time, sorted: manifest.sorted!(), key }).path);
}

describe('signing a snapshot on another thread', () => {
  it('writes the file (body, statement, signature and origins) signing on this thread writes', async () => {
    const manifest = filled(3_000);
    const here = signedHere(manifest, 9, 1_800_000_000_000);
    const there = await signSnapshotOffThread({ manifest, key, dir, head: () => ({ seq: 9, time: 1_800_000_000_000 }) });
    expect(readFileSync(there.path).equals(here)).toBe(true);
    expect(there.seq).toBe(9);
    expect(there.length).toBe((await readSnapshotBody(there)).length);
  });

  it('signs the manifest of the head read at the copy: changes before it are in, changes after it are not', async () => {
    const manifest = filled(2_000);
    let expected: Buffer | undefined;
    const signing = signSnapshotOffThread({
      manifest,
      key,
      dir,
      head: () => {
        expected = signedHere(manifest, 4, 1);
        // Commits right after the copy, while the other thread sorts and signs: enough to grow the tables.
        setImmediate(() => {
          for (let i = 0; i < 5_000; i++)
            manifest.set(`p2/later/p${i}.json`, { sha256: SHA(`later${i}`), size: 1, mtime: 2, origin: 'watch' });
          manifest.set('p2/vendor1/package-1.json', { sha256: SHA('changed'), size: 9, mtime: 3, origin: 'api' });
          manifest.delete('p2/vendor2/package-2.json');
        });
        return { seq: 4, time: 1 };
      },
    });
    manifest.set('p2/early/one.json', { sha256: SHA('early'), size: 1, mtime: 1, origin: 'watch' });
    const snapshot = await signing;
    expect(readFileSync(snapshot.path).equals(expected!)).toBe(true);
    const paths = await pathsOf(snapshot);
    expect(paths).toContain('p2/early/one.json');
    expect(paths).toContain('p2/vendor2/package-2.json');
    expect(paths.some((path) => path.startsWith('p2/later/'))).toBe(false);
    // The manifest still reads and writes its own tables (nothing of them was handed over).
    expect(manifest.get('p2/vendor1/package-1.json')?.size).toBe(9);
    expect(manifest.has('p2/vendor2/package-2.json')).toBe(false);
  });

  it('reads the tables in place, and the commits made meanwhile reach them once it ends', async () => {
    const manifest = filled(100);
    let expected: Buffer | undefined;
    const signing = signSnapshotOffThread({
      manifest,
      key,
      dir,
      head: () => {
        expected = signedHere(manifest, 2, 7);
        // Commits while the thread reads: enough to grow every table several times over.
        setImmediate(() => {
          for (let i = 0; i < 20_000; i++)
            manifest.set(`p2/grown/p${i}.json`, { sha256: SHA(`grown${i}`), size: i, mtime: 7, origin: 'upstream' });
          manifest.delete('p2/odd/quo"te.json');
        });
        return { seq: 2, time: 7 };
      },
    });
    const snapshot = await signing;
    expect(readFileSync(snapshot.path).equals(expected!)).toBe(true);
    expect(manifest.size).toBe(100 - 15 + 1 + 20_000 - 1);
    // Thawed: the changes are in the tables, so a snapshot signed here now has them all.
    const again = await pathsOf(await signSnapshotOffThread({ manifest, key, dir, head: () => ({ seq: 3, time: 8 }) }));
    expect(again).toHaveLength(manifest.size);
    expect(again).toContain('p2/grown/p19999.json');
    expect(again).not.toContain('p2/odd/quo"te.json');
  });

  it('waits for an earlier freeze to thaw, so the changes made under it are in its snapshot', async () => {
    const manifest = filled(300);
    const earlier = manifest.freeze!();
    manifest.set('p2/while/frozen.json', { sha256: SHA('while'), size: 1, mtime: 1, origin: 'api' });
    let headRead = false;
    // Its time limit counts its own work, not the wait.
    const signing = signSnapshotOffThread({ manifest, key, dir, head: () => ((headRead = true), { seq: 5, time: 5 }), timeLimitMs: 1_000 });
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // the thread is up by now, and waits
    expect(headRead).toBe(false);
    earlier.thaw();
    expect(await pathsOf(await signing)).toContain('p2/while/frozen.json');
  });

  it('gives up a signing over its time limit with a clear error, and the manifest takes commits again', async () => {
    const manifest = filled(100);
    await expect(signSnapshotOffThread({ manifest, key, dir, head: () => ({ seq: 1, time: 1 }), timeLimitMs: 1 })).rejects.toThrow(
      /took over 1 ms and was stopped/,
    );
    manifest.set('p2/after/limit.json', { sha256: SHA('after'), size: 1, mtime: 1, origin: 'api' });
    expect(manifest.sorted!().size).toBe(manifest.size);
  });
});
