import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@metasync/shared/daemon';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openPrimaryCore, type PrimaryCore, type PrimaryCoreOptions } from '../src/data-dir.js';

let dataDir: string;
let core: PrimaryCore | undefined;
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'metasync-snapshot-signing-'));
});
afterEach(async () => {
  await core?.close();
  core = undefined;
  await rm(dataDir, { recursive: true, force: true });
});
async function open(options: Partial<PrimaryCoreOptions> = {}): Promise<PrimaryCore> {
  core = await openPrimaryCore({
    dataDir,
    signingKeyFile: undefined,
    keepGenerations: 1000,
    snapshotEveryGenerations: 1_000_000,
    snapshotIntervalMs: 3_600_000,
    log: createLogger({ name: 'test', level: 'fatal' }),
    ...options,
  });
  return core;
}
/** Enough paths that a signing runs for a second or so while the test commits beside it. */
function bulk(c: PrimaryCore): void {
  const sha = 'ab'.repeat(32);
  for (let i = 0; i < 400_000; i++)
    c.manifest.set(`p2/bulk${i % 97}/package-${i}.json`, { sha256: sha, size: i, mtime: 1, origin: 'watch' });
}
const publish = (c: PrimaryCore, i: number) =>
  c.publisher.submit([{ path: `p2/acme/p${i}.json`, content: Buffer.from(`{"i":${i}}`) }], 'api');

/** Resolves when the in-flight signing reads its head (the copy). */
function copied(c: PrimaryCore): Promise<void> {
  const original = c.publisher.manifestSeq.bind(c.publisher);
  return new Promise((resolve) => {
    (c.publisher as { manifestSeq: () => number }).manifestSeq = () => {
      setImmediate(resolve);
      return original();
    };
  });
}

describe('signing snapshots on another thread, seen from the scheduler', () => {
  it('take() after commits writes the head, not a snapshot an earlier ask is still signing', async () => {
    const c = await open();
    await publish(c, 1);
    bulk(c);
    const atCopy = copied(c);
    const mirror = c.snapshots.current();
    await atCopy;
    for (let i = 2; i <= 4; i++) await publish(c, i);
    const head = c.publisher.headSeq();
    const file = await c.snapshots.take();
    await mirror;
    expect(file.seq).toBe(head);
  });

  it('serves a mirror only a snapshot the journal can continue from', async () => {
    const c = await open({ keepGenerations: 2 });
    await publish(c, 1);
    bulk(c);
    const atCopy = copied(c);
    const first = c.snapshots.current({ maxAgeMs: 1000 });
    await atCopy;
    for (let i = 2; i <= 6; i++) await publish(c, i);
    const late = await c.snapshots.current({ maxAgeMs: 1000 });
    await first;
    expect(late.seq).toBeGreaterThanOrEqual(c.publisher.journal.oldestSeq());
    expect(() => [...c.publisher.journal.generationsAfter(late.seq)]).not.toThrow();
  });

  it('close() waits for a signing a mirror started', async () => {
    const c = await open();
    await publish(c, 1);
    let settled = false;
    const pending = c.snapshots.current().then((snapshot) => {
      settled = true;
      return snapshot;
    });
    await c.snapshots.close();
    expect(settled).toBe(true);
    expect((await pending).seq).toBe(1);
  });

  it('a signing thread that fails rejects the ask, and the next ask signs anew', async () => {
    const c = await open();
    await publish(c, 1);
    const ring = c.keyRing as { active: () => unknown };
    const good = ring.active.bind(ring);
    ring.active = () => ({ ...(good() as object), privateKey: 'not a key' });
    await expect(c.snapshots.current()).rejects.toThrow();
    ring.active = good;
    expect((await c.snapshots.current()).seq).toBe(1);
  });
});
