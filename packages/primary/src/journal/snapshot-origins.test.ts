import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKeyPem, signingKeyFromPem } from '@metasync/shared';
import { describe, expect, it } from 'vitest';
import type { Manifest } from './manifest.js';
import { loadLatestSnapshot, signSnapshot } from './snapshots.js';

describe('snapshot origins', () => {
  it('keeps each path its origin (watch, api, upstream, pins) across a snapshot, so each source still reconciles only its own paths', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'metasync-snapshot-origins-'));
    try {
      const manifest: Manifest = new Map([
        ['p2/a/w.json', { sha256: 'a'.repeat(64), size: 1, mtime: 1, origin: 'watch' }],
        ['p2/a/p.json', { sha256: 'b'.repeat(64), size: 2, mtime: 2, origin: 'api' }],
        ['p2/a/u.json', { sha256: 'c'.repeat(64), size: 3, mtime: 3, origin: 'upstream' }],
        ['dist-pins/a/p.json', { sha256: 'd'.repeat(64), size: 4, mtime: 4, origin: 'pins' }],
      ]);
      const key = signingKeyFromPem(generateSigningKeyPem());
      await signSnapshot({ seq: 3, time: 3, manifest, key, dir });
      const loaded = await loadLatestSnapshot(dir);
      expect(new Map(loaded?.manifest.entries())).toEqual(manifest);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
