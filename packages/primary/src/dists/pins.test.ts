import { createLogger } from '@metasync/shared/daemon';
import { distPinsPathFor, isMetasyncError, sha256Hex } from '@metasync/shared';
import { describe, expect, it } from 'vitest';
import { createDistPins } from './pins.js';

const log = createLogger({ name: 'test', level: 'silent' });

/** A publisher over a Map (the pins logic, not the journal, is under test here). */
function memoryPublisher() {
  const objects = new Map<string, Buffer>();
  const manifest = new Map<string, { sha256: string; size: number; mtime: number; origin: 'api' | 'pins' | 'watch' }>();
  let seq = 0;
  const submits: string[] = [];
  return {
    manifest,
    submits,
    getEntry: (path: string) => manifest.get(path),
    readObject: async (sha256: string) => objects.get(sha256)!,
    manifestSeq: () => seq,
    async submit(changes: readonly { path: string; content?: Buffer }[], origin: 'api' | 'pins' | 'watch') {
      await new Promise((resolve) => setTimeout(resolve, 5));
      seq++;
      for (const change of changes) {
        const sha256 = sha256Hex(change.content!);
        objects.set(sha256, change.content!);
        manifest.set(change.path, { sha256, size: change.content!.length, mtime: seq, origin });
        submits.push(change.path);
      }
      return { seq };
    },
  };
}

const report = (sha: string, reference = 'ab12') => ({
  package: 'acme/foo',
  reference,
  type: 'zip' as const,
  sha256: sha.repeat(64),
  size: 10,
  source: 'http://m1',
});

describe('dist pins', () => {
  it('keeps the first report of an archive, whatever arrives at the same time, and pins other references beside it', async () => {
    const publisher = memoryPublisher();
    publisher.manifest.set('p2/acme/foo.json', { sha256: 'x', size: 1, mtime: 0, origin: 'api' });
    const pins = createDistPins({ publisher, log, now: () => 42 });
    const [first, second, other] = await Promise.all([pins.pin(report('a')), pins.pin(report('b')), pins.pin(report('c', 'cd34'))]);
    expect(first).toMatchObject({ created: true, pin: { sha256: 'a'.repeat(64), size: 10, time: 42, source: 'http://m1' } });
    expect(second).toMatchObject({ created: false, pin: { sha256: 'a'.repeat(64) } });
    expect(other).toMatchObject({ created: true, pin: { sha256: 'c'.repeat(64) } });
    const stored = JSON.parse((await publisher.readObject(publisher.manifest.get(distPinsPathFor('acme/foo'))!.sha256)).toString()) as {
      pins: Record<string, { sha256: string }>;
    };
    expect(Object.keys(stored.pins).sort()).toEqual(['ab12.zip', 'cd34.zip']);
    expect(publisher.manifest.get(distPinsPathFor('acme/foo'))!.origin).toBe('pins');
  });

  it('refuses to pin an archive of a package the repository does not have', async () => {
    const pins = createDistPins({ publisher: memoryPublisher(), log });
    const err = await pins.pin(report('a')).catch((e: unknown) => e);
    expect(isMetasyncError(err, 'METASYNC_ERR_PACKAGE_NOT_FOUND')).toBe(true);
  });
});
