import { sha256Hex } from '@metasync/shared';
import { describe, expect, it } from 'vitest';
import type { FrozenManifest } from './manifest-freeze.js';
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

  it('neither repeats nor loses a path it held before, when it thaws in the middle of an iteration', () => {
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
    // A path added under the freeze and applied by the thaw before the iteration's end is missed, as the
    // tables' own iteration misses one added behind it; no caller iterates across an await today.
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.filter((path) => path !== 'p2/a/new.json').sort()).toEqual(Array.from({ length: 50 }, (_, i) => `p2/a/p${i}.json`).sort());
  });

  it('refuses a change the tables would refuse when it is made, not at the thaw', () => {
    const manifest = createManifest();
    const frozen = manifest.freeze!();
    manifest.set('p2/a/good.json', entry('good'));
    expect(() => manifest.set('p2/a/big.json', { ...entry('big'), size: 2 ** 32 })).toThrow(RangeError);
    expect(() => manifest.set('p2/a/\u00e9.json', entry('e'))).toThrow(TypeError);
    expect(() => manifest.set('p2/a/sha.json', { ...entry('s'), sha256: 'not-a-digest' })).toThrow(TypeError);
    expect(manifest.size).toBe(1);
    frozen.thaw();
    expect(manifest.changesWaiting!()).toBe(false);
    expect([...manifest.keys()]).toEqual(['p2/a/good.json']);
  });
});

describe('iterating a manifest while it is frozen or thawed, as a Map iterates', () => {
  const filled = () => {
    const manifest = createManifest();
    for (let i = 0; i < 10; i++) manifest.set(`p2/acme/p${i}.json`, entry(`old${i}`));
    return manifest;
  };

  it('does not yield a path deleted under a freeze that began after the iteration, before it was reached', () => {
    const manifest = filled();
    const seen: string[] = [];
    let frozen: FrozenManifest | undefined;
    for (const path of manifest.keys()) {
      seen.push(path);
      if (seen.length === 1) {
        frozen = manifest.freeze!();
        manifest.delete(path === 'p2/acme/p5.json' ? 'p2/acme/p6.json' : 'p2/acme/p5.json');
      }
    }
    frozen!.thaw();
    expect(seen).toHaveLength(9);
    expect(new Set(seen).size).toBe(9);
  });

  it('yields the value a path has when reached, also one changed under a freeze', () => {
    const manifest = filled();
    const got = new Map<string, string>();
    let frozen: FrozenManifest | undefined;
    for (const [path, value] of manifest.entries()) {
      got.set(path, value.sha256);
      if (got.size === 1) {
        frozen = manifest.freeze!();
        for (let i = 0; i < 10; i++) manifest.set(`p2/acme/p${i}.json`, entry(`new${i}`));
      }
    }
    frozen!.thaw();
    expect(got.size).toBe(10);
    const newer = [...got].filter(([path, sha]) => sha === sha256Hex(`new${path.slice(9, -5)}`));
    expect(newer).toHaveLength(9);
  });

  it('yields a path added under a freeze during the iteration, and every path of one origin', () => {
    const manifest = filled();
    const frozen = manifest.freeze!();
    const seen: string[] = [];
    for (const path of manifest.keys()) {
      seen.push(path);
      if (seen.length === 1) manifest.set('p2/acme/added.json', entry('added'));
    }
    expect(seen).toContain('p2/acme/added.json');
    expect(seen).toHaveLength(11);
    manifest.set('p2/acme/p3.json', entry('moved', 'api'));
    expect([...manifest.pathsWithOrigin!('api')]).toEqual(['p2/acme/p3.json']);
    expect([...manifest.pathsWithOrigin!('watch')]).toHaveLength(10);
    frozen.thaw();
    expect([...manifest.pathsWithOrigin!('api')]).toEqual(['p2/acme/p3.json']);
  });
});
