/**
 * The follower saves its change-feed cursor only after the generation holding
 * those changes committed: a commit that fails leaves the cursor where it was,
 * so the next poll asks for the same changes again and nothing is skipped.
 * In process: a real primary core, the follower, and the packagist.org double.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger } from '@metasync/shared/daemon';
import { afterEach, describe, expect, it } from 'vitest';
import { startPackagistDouble, type PackagistDouble } from '../../../test/helpers/packagist-double.js';
import { waitFor } from '../../../test/helpers/wait-for.js';
import type { Publisher } from '../src/publish/publisher.js';
import { startUpstreamFollower, type UpstreamFollower } from '../src/upstream/follower.js';
import { createUpstreamStatus } from '../src/upstream/status.js';
import { startTestPrimary, type TestPrimary } from './primary-fixture.js';

const p2 = (name: string, version: string) => ({ packages: { [name]: [{ name, version }] }, minified: 'composer/2.0' });

let double: PackagistDouble | undefined;
let primary: TestPrimary | undefined;
let follower: UpstreamFollower | undefined;

afterEach(async () => {
  await follower?.close();
  await primary?.close();
  await double?.close();
});

describe('upstream cursor', () => {
  it('is not saved past changes whose generation failed to commit, and those changes land once commits work again', async () => {
    double = await startPackagistDouble();
    double.setList(['acme/a']);
    double.put('acme/a', p2('acme/a', '1.0.0'), { silent: true });
    primary = await startTestPrimary();
    const real = primary.core.publisher;
    let failing = false;
    const publisher: Publisher = {
      ...real,
      refusesPath: real.refusesPath,
      submit: (changes, origin) => (failing ? Promise.reject(new Error('disk on fire')) : real.submit(changes, origin)),
    };
    const status = createUpstreamStatus({ upstream: double.url, pollMs: 50 });
    follower = startUpstreamFollower({
      config: { url: double.url, pollMs: 50, concurrency: 4, timeoutMs: 2_000 },
      dataDir: primary.dataDir,
      publisher,
      status,
      log: createLogger({ name: 'test', level: 'silent' }),
      maxBackoffMs: 100,
    });
    const statePath = join(primary.dataDir, 'upstream-state.json');
    const readState = async () => JSON.parse(await readFile(statePath, 'utf8')) as { phase: string; cursor: number };
    await waitFor(() => status.snapshot().fresh, { what: 'following', timeoutMs: 10_000 });
    expect(real.getEntry('p2/acme/a.json')).toBeDefined();
    // A poll with no changes moves the cursor to the feed's timestamp; let one pass.
    await waitFor(async () => (await readState()).cursor !== undefined && status.snapshot().cursor !== undefined, { timeoutMs: 5_000 });

    failing = true;
    const cursorBefore = (await readState()).cursor;
    double.put('acme/a', p2('acme/a', '2.0.0'));
    const firstFailure = await waitFor(
      () => (status.snapshot().lastError?.message.includes('disk on fire') === true ? status.snapshot().lastError!.atMs : undefined),
      { what: 'failed commit', timeoutMs: 10_000 },
    );
    // A second failed round: the retry asked for the same changes again.
    await waitFor(() => (status.snapshot().lastError?.atMs ?? 0) > firstFailure, { what: 'retried round', timeoutMs: 10_000 });
    expect((await readState()).cursor).toBeLessThanOrEqual(cursorBefore);
    expect((await real.readObject(real.getEntry('p2/acme/a.json')!.sha256)).toString()).toContain('1.0.0');

    failing = false;
    await waitFor(async () => (await real.readObject(real.getEntry('p2/acme/a.json')!.sha256)).toString().includes('2.0.0'), {
      what: 'update committed after recovery',
      timeoutMs: 10_000,
    });
    await waitFor(async () => (await readState()).cursor > cursorBefore, { what: 'cursor advanced', timeoutMs: 5_000 });
    // The cursor is saved before the round reports itself fresh: wait for that report rather than race it.
    await waitFor(() => status.snapshot().fresh, { what: 'fresh again', timeoutMs: 5_000 });
  }, 30_000);
});
