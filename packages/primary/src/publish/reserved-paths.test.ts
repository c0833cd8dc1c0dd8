import { createLogger } from '@metasync/shared/daemon';
import { describe, expect, it, vi } from 'vitest';
import { createManifest } from '../journal/manifest.js';
import { deleteReservedPaths } from './reserved-paths.js';

const SHA = 'ab'.repeat(32);

describe('deleteReservedPaths', () => {
  it("deletes reserved paths but the pins source's own, and builds an entry only for reserved paths", async () => {
    const manifest = createManifest();
    for (let i = 0; i < 1000; i++) manifest.set(`p2/vendor${i}/package.json`, { sha256: SHA, size: 10, mtime: 1, origin: 'watch' });
    manifest.set('health/fresh', { sha256: SHA, size: 10, mtime: 1, origin: 'watch' });
    manifest.set('metrics', { sha256: SHA, size: 10, mtime: 1, origin: 'api' });
    manifest.set('dist-pins/acme.json', { sha256: SHA, size: 10, mtime: 1, origin: 'pins' });
    const get = vi.spyOn(manifest, 'get');
    const entries = vi.spyOn(manifest, 'entries');
    const submit = vi.fn(async () => ({ seq: 7 }));

    await deleteReservedPaths({ manifest, submit, log: createLogger({ name: 'test', level: 'silent' }) });

    expect(submit).toHaveBeenCalledOnce();
    expect(submit.mock.calls[0]).toEqual([
      [
        { path: 'health/fresh', deleted: true },
        { path: 'metrics', deleted: true },
      ],
      'watch',
    ]);
    // At a million paths an entry per path was the restart's peak: only the three reserved ones are looked up.
    expect(get).toHaveBeenCalledTimes(3);
    expect(entries).not.toHaveBeenCalled();
  });

  it('submits nothing when no path is reserved', async () => {
    const manifest = createManifest();
    manifest.set('p2/acme/foo.json', { sha256: SHA, size: 10, mtime: 1, origin: 'watch' });
    const submit = vi.fn(async () => ({ seq: 1 }));
    await deleteReservedPaths({ manifest, submit, log: createLogger({ name: 'test', level: 'silent' }) });
    expect(submit).not.toHaveBeenCalled();
  });
});
