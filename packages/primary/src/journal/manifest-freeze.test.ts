import { sha256Hex } from '@metasync/shared';
import { describe, expect, it } from 'vitest';
import { createManifest, type ManifestEntry } from './manifest.js';
import { sortedView } from './manifest-view.js';

const entry = (text: string, origin: ManifestEntry['origin'] = 'watch'): ManifestEntry => ({
  sha256: sha256Hex(text),
  size: text.length,
  mtime: 1,
  origin,
});

/** The live paths of frozen tables, read as the signing thread reads them. */
function pathsIn(tables: Parameters<typeof sortedView>[0]): string[] {
  const sorted = sortedView(tables);
  return Array.from({ length: sorted.size }, (_, index) => sorted.pathAt(index));
}

describe('a frozen manifest', () => {
  it('keeps its tables as they were while every read sees the changes made since, and applies them at the thaw', () => {
    const manifest = createManifest();
    manifest.set('p2/a/kept.json', entry('kept'));
    manifest.set('p2/a/changed.json', entry('old'));
    manifest.set('p2/a/deleted.json', entry('deleted'));
    const frozen = manifest.freeze!();

    manifest.set('p2/a/changed.json', entry('new', 'api'));
    manifest.delete('p2/a/deleted.json');
    manifest.set('p2/a/added.json', entry('added', 'upstream'));
    manifest.set('p2/a/gone.json', entry('gone'));
    manifest.delete('p2/a/gone.json');
    expect(manifest.delete('p2/a/never.json')).toBe(false);

    expect(pathsIn(frozen.tables)).toEqual(['p2/a/changed.json', 'p2/a/deleted.json', 'p2/a/kept.json']);
    expect(manifest.size).toBe(3);
    expect(manifest.get('p2/a/changed.json')).toEqual(entry('new', 'api'));
    expect(manifest.has('p2/a/deleted.json')).toBe(false);
    expect(manifest.has('p2/a/gone.json')).toBe(false);
    expect([...manifest.keys()].sort()).toEqual(['p2/a/added.json', 'p2/a/changed.json', 'p2/a/kept.json']);
    expect(new Map(manifest.entries()).get('p2/a/added.json')).toEqual(entry('added', 'upstream'));
    expect([...manifest.values()].map((value) => value.size).sort()).toEqual([3, 4, 5]);
    expect([...manifest.pathsWithOrigin!('upstream')]).toEqual(['p2/a/added.json']);
    expect([...manifest.pathsWithOrigin!('watch')]).toEqual(['p2/a/kept.json']);
    expect(() => manifest.sorted!()).toThrow(/frozen/);

    frozen.thaw();
    frozen.thaw(); // counted once
    expect(manifest.sorted!().size).toBe(3);
    expect([...manifest.keys()].sort()).toEqual(['p2/a/added.json', 'p2/a/changed.json', 'p2/a/kept.json']);
    expect(manifest.get('p2/a/changed.json')).toEqual(entry('new', 'api'));
  });

  it('counts an object a waiting change names as in use, and one it dropped until the thaw', () => {
    const manifest = createManifest();
    manifest.set('p2/a/one.json', entry('first'));
    const frozen = manifest.freeze!();
    manifest.set('p2/a/one.json', entry('second'));
    expect(manifest.hasObject!(sha256Hex('second'))).toBe(true);
    // Still in the frozen tables: the GC keeps it one pass longer rather than lose one in use.
    expect(manifest.hasObject!(sha256Hex('first'))).toBe(true);
    frozen.thaw();
    expect(manifest.hasObject!(sha256Hex('first'))).toBe(false);
    expect(manifest.hasObject!(sha256Hex('second'))).toBe(true);
  });

  it('waits for the last of overlapping freezes before it applies anything, and refuses one that would miss waiting changes', async () => {
    const manifest = createManifest();
    const first = manifest.freeze!();
    const second = manifest.freeze!();
    manifest.set('p2/a/one.json', entry('one'));
    expect(manifest.changesWaiting!()).toBe(true);
    expect(() => manifest.freeze!()).toThrow(/wait/);
    let thawed = false;
    const waiting = manifest.thawed!().then(() => (thawed = true));
    first.thaw();
    await Promise.resolve();
    expect(thawed).toBe(false);
    expect(pathsIn(second.tables)).toEqual([]);
    second.thaw();
    await waiting;
    expect(manifest.changesWaiting!()).toBe(false);
    expect(pathsIn(manifest.freeze!().tables)).toEqual(['p2/a/one.json']);
  });

  it('neither repeats nor loses a path when it thaws in the middle of an iteration', () => {
    const manifest = createManifest();
    for (let i = 0; i < 50; i++) manifest.set(`p2/a/p${i}.json`, entry(`v${i}`));
    const frozen = manifest.freeze!();
    for (let i = 0; i < 50; i += 5) manifest.set(`p2/a/p${i}.json`, entry(`w${i}`));
    manifest.set('p2/a/new.json', entry('new'));
    const seen: string[] = [];
    for (const path of manifest.keys()) {
      seen.push(path);
      if (seen.length === 20) frozen.thaw();
    }
    expect(seen.sort()).toEqual([...manifest.keys()].sort());
    expect(new Set(seen).size).toBe(51);
  });
});
