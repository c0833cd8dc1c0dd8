import { Worker } from 'node:worker_threads';
import type { SigningKey } from '@metasync/shared';
import type { Manifest } from './manifest.js';
import { TABLE_ARRAY_NAMES, type ManifestTables, type TableArrayName } from './manifest-view.js';
import type { SignedSnapshot } from './snapshot-file.js';
import { signSnapshot } from './snapshots.js';

/** The signing thread's first message: shared memory for each table array, its pages already touched. */
export type PreparedMemory = Record<TableArrayName, SharedArrayBuffer>;

/** The second message, to the thread: the tables copied into that memory (or, when they outgrew it, plain copies). */
export interface SignRequest {
  seq: number;
  time: number;
  tables: ManifestTables;
  key: SigningKey;
  /** Where the snapshot file is written (snapshot-file.ts). */
  dir: string;
}

/** The thread's answer: the snapshot file written and signed. */
export type SignAnswer = SignedSnapshot;

/** Room for tables that grow while the thread prepares its memory (well under a second). */
const HEADROOM = 1 / 8;

/**
 * Signs the manifest on a thread of its own. At a million paths sorting, encoding and signing held the
 * event loop 1.8 s on an idle machine, and publishes waited up to 5 s behind it on a busy one
 * (publish-visible at 1M, 2026-12-07).
 *
 *   thread: shared memory the size of the tables, every page touched   (~100 MB at 1M: page faults cost
 *           ~3 ms a MB on the build VM, so a plain copy held the loop 340 ms)
 *   here:   the tables copied into it and the head read, in one synchronous step (memcpy, a few ms)
 *   thread: sorts that copy and writes it to the snapshot file a chunk at a time, hashing it, then signs
 *           the statement of its hash, while this thread serves and commits
 *
 * `head` is read at the copy, so the snapshot is the manifest of that seq. A manifest without tables
 * (a Map, in tests) is signed here.
 */
export async function signSnapshotOffThread(options: {
  manifest: Manifest;
  key: SigningKey;
  head: () => { seq: number; time: number };
  dir: string;
}): Promise<SignedSnapshot> {
  const { manifest, key, head, dir } = options;
  const planned = manifest.tables?.();
  if (planned === undefined) return signSnapshot({ ...head(), manifest, key, dir });
  const fromSources = import.meta.url.endsWith('.ts');
  const bytes = Object.fromEntries(TABLE_ARRAY_NAMES.map((name) => [name, Math.ceil(planned[name].byteLength * (1 + HEADROOM))])) as Record<
    TableArrayName,
    number
  >;
  const worker = new Worker(new URL(fromSources ? './snapshot-sign-worker.ts' : './snapshot-sign-worker.js', import.meta.url), {
    workerData: bytes,
    ...(fromSources ? { execArgv: ['--conditions=source', '--import', 'tsx'] } : {}),
  });
  const messages = workerMessages(worker);
  try {
    const memory = (await messages.next()) as PreparedMemory;
    const { seq, time } = head();
    const transfer: ArrayBuffer[] = [];
    const request: SignRequest = { seq, time, tables: copyInto(memory, manifest.tables!(), transfer), key, dir };
    worker.postMessage(request, transfer);
    return (await messages.next()) as SignAnswer;
  } finally {
    await worker.terminate();
  }
}

/**
 * The live tables copied into the prepared memory. An array that outgrew it (the arena grows by a quarter at
 * once) is copied plainly, its pages faulting on this thread, and its copy added to `transfer`.
 */
function copyInto(memory: PreparedMemory, live: ManifestTables, transfer: ArrayBuffer[]): ManifestTables {
  const copy = <T extends Uint8Array | Uint16Array | Uint32Array | Float64Array>(
    name: TableArrayName,
    source: T,
    make: (buffer: SharedArrayBuffer, length: number) => T,
  ): T => {
    const shared = memory[name];
    if (source.byteLength > shared.byteLength) {
      const plain = source.slice() as T;
      transfer.push(plain.buffer as ArrayBuffer);
      return plain;
    }
    const target = make(shared, source.length);
    target.set(source as never);
    return target;
  };
  return {
    offset: copy('offset', live.offset, (buffer, length) => new Uint32Array(buffer, 0, length)),
    length: copy('length', live.length, (buffer, length) => new Uint16Array(buffer, 0, length)),
    object: copy('object', live.object, (buffer, length) => new Uint32Array(buffer, 0, length)),
    size: copy('size', live.size, (buffer, length) => new Uint32Array(buffer, 0, length)),
    mtime: copy('mtime', live.mtime, (buffer, length) => new Float64Array(buffer, 0, length)),
    originCodes: copy('originCodes', live.originCodes, (buffer, length) => new Uint8Array(buffer, 0, length)),
    arena: copy('arena', asPlainBytes(live.arena), (buffer, length) => new Uint8Array(buffer, 0, length)),
    digest: copy('digest', live.digest, (buffer, length) => new Uint8Array(buffer, 0, length)),
    origins: [...live.origins],
  };
}

/** The arena is a Buffer, whose slice() is a view, not a copy: it is read through a plain Uint8Array. */
function asPlainBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The worker's messages in order; an error, or an exit before the next message, rejects. */
function workerMessages(worker: Worker): { next(): Promise<unknown> } {
  const queued: unknown[] = [];
  let waiting: { resolve(value: unknown): void; reject(err: unknown): void } | undefined;
  let failure: unknown;
  worker.on('message', (message: unknown) => {
    if (waiting === undefined) queued.push(message);
    else waiting.resolve(message);
    waiting = undefined;
  });
  const fail = (err: unknown): void => {
    failure ??= err;
    waiting?.reject(failure);
    waiting = undefined;
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`the snapshot signing thread exited (code ${code}) without an answer`)));
  return {
    next() {
      if (queued.length > 0) return Promise.resolve(queued.shift());
      if (failure !== undefined) return Promise.reject(failure);
      return new Promise((resolve, reject) => (waiting = { resolve, reject }));
    },
  };
}
