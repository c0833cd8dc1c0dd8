import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SYNC_ROUTES, changesBatchSchema } from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { afterEach, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from '../../../test/helpers/daemon.js';
import { waitFor } from '../../../test/helpers/wait-for.js';
import { openJournal } from '../src/journal/journal.js';
import { loadLatestSnapshot } from '../src/journal/snapshots.js';

/**
 * SIGKILL the built daemon in the middle of a burst of 1,000 publishes through
 * the publish API, restart it on the same data dir, and check invariant 7:
 * every publish that got a 2xx is present, the journal verifies, and the
 * generation at every acknowledged seq still holds the acknowledged change.
 */
const TOKEN = 'crash-test-token';
const daemons: Daemon[] = [];
let dataDir: string | undefined;

afterEach(async () => {
  for (const daemon of daemons.splice(0)) await daemon.kill();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
  dataDir = undefined;
});

async function start(dir: string): Promise<Daemon> {
  const daemon = await startDaemon({
    bin: 'primary',
    args: ['--data', dir, '--listen', '127.0.0.1:0', '--snapshot-every', '100'],
    env: { METASYNC_PUBLISH_TOKEN: TOKEN },
  });
  daemons.push(daemon);
  return daemon;
}

function publishPackage(baseUrl: string, name: string): Promise<Response> {
  return fetch(`${baseUrl}/api/v1/packages/${name}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      versions: [{ version: '1.0.0', dist: { type: 'zip', url: `https://example.com/${name}.zip`, reference: name.replace('/', '-') } }],
    }),
  });
}

/** Does the generation at `seq` (alone) hold `path`? */
async function generationHolds(baseUrl: string, seq: number, path: string): Promise<boolean> {
  const response = await fetch(`${baseUrl}${SYNC_ROUTES.changes}?since=${seq - 1}&limit=1`);
  expect(response.status).toBe(200);
  const batch = changesBatchSchema.parse(await response.json());
  expect(batch.to).toBe(seq);
  return batch.entries.some((entry) => entry.path === path && !('deleted' in entry));
}

describe('primary crash recovery', () => {
  it('keeps every acknowledged publish and never reuses a seq after SIGKILL during a burst of 1,000', { timeout: 120_000 }, async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'metasync-crash-'));
    const first = await start(dataDir);
    const acked = new Map<string, number>();
    let failures = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < 1000) {
        const name = `crash/pkg-${next++}`;
        try {
          const response = await publishPackage(first.url, name);
          if (response.ok) acked.set(name, ((await response.json()) as { seq: number }).seq);
          else failures++;
        } catch {
          failures++; // connection reset by the kill: not acknowledged
        }
      }
    };
    const burst = Promise.all(Array.from({ length: 32 }, worker));
    await waitFor(() => acked.size >= 300, { timeoutMs: 60_000, intervalMs: 1, what: '300 acknowledged publishes' });
    await first.kill();
    await burst;
    expect(acked.size).toBeGreaterThanOrEqual(300);
    expect(acked.size).toBeLessThan(1000);
    expect(failures).toBeGreaterThan(0);

    const second = await start(dataDir);
    const state = (await (await fetch(`${second.url}${SYNC_ROUTES.state}`)).json()) as { seq: number };
    const maxAcked = Math.max(...acked.values());
    expect(state.seq).toBeGreaterThanOrEqual(maxAcked);
    for (const [name, seq] of acked) {
      const response = await fetch(`${second.url}/p2/${name}.json`);
      expect(response.status, name).toBe(200);
      expect(await response.text()).toContain(`"${name}"`);
      expect(await generationHolds(second.url, seq, `p2/${name}.json`), `seq ${seq} holds ${name}`).toBe(true);
    }

    // Publishing after the restart takes new seqs and leaves the acknowledged generations as they were.
    const after = await Promise.all(Array.from({ length: 20 }, (_, i) => publishPackage(second.url, `after/pkg-${i}`)));
    const afterSeqs = await Promise.all(after.map(async (response) => ((await response.json()) as { seq: number }).seq));
    expect(Math.min(...afterSeqs)).toBeGreaterThan(state.seq);
    for (const [name, seq] of [...acked].slice(0, 50)) expect(await generationHolds(second.url, seq, `p2/${name}.json`)).toBe(true);
    await second.stop();

    // The journal verifies: every frame's CRC, contiguous seqs, covered by the latest snapshot.
    const log = createLogger({ name: 'verify', level: 'silent' });
    const snapshot = await loadLatestSnapshot(join(dataDir, 'snapshots'));
    const { journal, replayed } = await openJournal({
      dir: join(dataDir, 'journal'),
      keepGenerations: 10_000,
      baseSeq: snapshot?.seq ?? 0,
      baseTime: snapshot?.time ?? 0,
      log,
    });
    try {
      expect(journal.headSeq()).toBe(Math.max(...afterSeqs));
      expect(replayed).toBeGreaterThan(0);
    } finally {
      await journal.close();
    }
  });
});
