import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import type { ChangeEntry, PathEntry } from '@metasync/shared';
import { applyEntries, emptyIndex, replaceWithSnapshot } from './index-state.js';

/**
 * The shared index under a writer that keeps switching generations while
 * reader threads look paths up: every lookup must be wholly one generation.
 * Generation g points every fixed path at object H(g) with size = mtime = g,
 * adds 20 paths `grow/g/*` and deletes `grow/(g-3)/*` (slot rebuilds and arena
 * compactions replace arrays), and every 25th generation is a snapshot (a new
 * set of tables). Readers run the built reader (dist/: the threads load plain JS).
 */
const READER = fileURLToPath(new URL('../../dist/index/index-reader.js', import.meta.url));
const FIXED = 64;
const GENERATIONS = 400;
const hashOf = (g: number): string => createHash('sha256').update(`generation-${g}`).digest('hex');
const fixedPath = (i: number): string => `p2/vendor-${i % 7}/package-${i}.json`;

const READER_THREAD = `
const { createHash } = require('node:crypto');
const { workerData, parentPort } = require('node:worker_threads');
import(workerData.readerUrl).then(({ openIndexReader }) => {
  const reader = openIndexReader({ handle: workerData.handle, port: workerData.port });
  const stop = new Int32Array(workerData.stop);
  const hashes = new Map();
  const hashOf = (g) => {
    let h = hashes.get(g);
    if (h === undefined) hashes.set(g, (h = createHash('sha256').update('generation-' + g).digest('hex')));
    return h;
  };
  let lookups = 0, torn = 0, sample;
  const seqs = new Set();
  parentPort.postMessage('ready');
  for (let round = 0; round < 5e6 && Atomics.load(stop, 0) === 0; round++) {
    const i = round % ${FIXED};
    const entry = reader.lookup('p2/vendor-' + (i % 7) + '/package-' + i + '.json');
    const seq = reader.seq;
    lookups++;
    seqs.add(seq);
    if (seq >= 1 && (entry === undefined || entry.size !== seq || entry.mtime !== seq || entry.sha256 !== hashOf(seq))) {
      torn++;
      sample ??= { seq, entry };
    }
    // Paths of a generation exist from it on for 3 generations, then never again.
    const made = seq;
    const young = reader.lookup('grow/' + made + '/' + (round % 20));
    if (made >= 1 && young === undefined && reader.seq - made < 3) { torn++; sample ??= { made, now: reader.seq, young: 'missing' }; }
    const gone = reader.lookup('grow/' + (made - 3) + '/' + (round % 20));
    if (made > 3 && gone !== undefined) { torn++; sample ??= { made, now: reader.seq, gone: 'present' }; }
    lookups += 2;
  }
  parentPort.postMessage({ lookups, torn, sample, seqs: seqs.size, retries: reader.retries() });
});
`;

function generation(g: number): ChangeEntry[] {
  const entries: ChangeEntry[] = [];
  for (let i = 0; i < FIXED; i++) entries.push({ path: fixedPath(i), sha256: hashOf(g), size: g, mtime: g });
  for (let j = 0; j < 20; j++) entries.push({ path: `grow/${g}/${j}`, sha256: hashOf(g), size: g, mtime: g });
  if (g > 3) for (let j = 0; j < 20; j++) entries.push({ path: `grow/${g - 3}/${j}`, deleted: true, mtime: g });
  return entries;
}

describe('shared index read by other threads', () => {
  it('gives every lookup one whole generation while the writer switches, grows and replaces its tables', async () => {
    const state = emptyIndex(0, { shared: true });
    const sharing = state.sharing!;
    const stop = new SharedArrayBuffer(4);
    const readers = [0, 1].map(() => {
      const { port1, port2 } = new MessageChannel();
      const unsubscribe = sharing.onLayout((layout) => port1.postMessage(layout));
      const worker = new Worker(READER_THREAD, {
        eval: true,
        // Not the test runner's resolve conditions: the thread loads the built JS, as the daemon does.
        execArgv: [],
        workerData: { readerUrl: new URL(`file://${READER}`).href, handle: sharing.handle(), port: port2, stop },
        transferList: [port2],
      });
      const ready = new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      const result = ready.then(
        () =>
          new Promise<{ lookups: number; torn: number; sample: unknown; seqs: number; retries: number }>((resolve, reject) => {
            worker.once('message', resolve);
            worker.once('error', reject);
          }),
      );
      return { worker, ready, result, unsubscribe, port1 };
    });
    let epochs = 0;
    sharing.onLayout(() => epochs++);
    await Promise.all(readers.map((r) => r.ready));
    try {
      for (let g = 1; g <= GENERATIONS; g++) {
        if (g % 25 === 0) {
          const entries: PathEntry[] = [];
          for (let i = 0; i < FIXED; i++) entries.push({ path: fixedPath(i), sha256: hashOf(g), size: g, mtime: g });
          for (let back = 2; back >= 0; back--)
            if (g - back >= 1)
              for (let j = 0; j < 20; j++) entries.push({ path: `grow/${g - back}/${j}`, sha256: hashOf(g), size: g, mtime: g });
          replaceWithSnapshot(state, { seq: g, time: g, entries }, g);
        } else {
          state.write(() => {
            applyEntries(state, generation(g), g);
            state.seq = g;
            state.time = g;
          });
        }
        // Let the readers run between switches too, not only across them.
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      Atomics.store(new Int32Array(stop), 0, 1);
    }
    const results = await Promise.all(readers.map((r) => r.result));
    for (const r of readers) {
      r.unsubscribe();
      r.port1.close();
      await r.worker.terminate();
    }
    expect(epochs).toBeGreaterThan(GENERATIONS / 25);
    for (const result of results) {
      expect(result.sample).toBeUndefined();
      expect(result.torn).toBe(0);
      expect(result.lookups).toBeGreaterThan(1000);
      // The readers saw the generations change under them, not one frozen copy.
      expect(result.seqs).toBeGreaterThan(10);
    }
  }, 60_000);
});
