import * as fsCallback from 'node:fs';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { readIfPresent } from './identity.js';

const writeFile = promisify(fsCallback.writeFile);

/**
 * Whole-file creates (`wx`: never over an existing file) and reads of the object store, as
 * `writeFile(path, bytes, { flag: 'wx' })` and `readFile(path)` do them, batched when there are many.
 *
 * A bulk transfer touches tens of thousands of small files: a mirror's bootstrap creates one per object, the
 * primary reads one per object it packs. The async calls make three or four trips through libuv's pool per
 * file (open, fstat, read or write, close), and on two cores those hand-offs and the wake-ups of four pool
 * threads cost the main thread about 60 µs a file (100k-path bootstrap profiles, 2026-12-07). So when one turn
 * of the event loop asks for BATCH_FROM files or more, they go to a thread of their own in one message, are
 * done there one after another with the same calls' synchronous forms, and one message answers them all.
 * Fewer go through the pool as before while no thread runs: a publish's few files, or one GET, never wait
 * for a thread to start. The thread starts on the first batch (or at once, `kept`); while it runs, every file
 * goes to it (behind at most a batch of MAX_BATCH_FILES, a few ms).
 *
 * Nothing about a file changes: it is created exclusively, written whole, closed, and not synced (the store's
 * sync() makes it durable, durability.ts). A failure is reported per file with the errno fields the async
 * call's error has (`code`, `syscall`, `path`), so callers treat EEXIST, ENOENT and ENOSPC as before; a write
 * that fails midway may leave a short file, as writeFile does, which the caller removes. Bytes read come back
 * as buffers of their own (copied out of the answer), so none pins another file's bytes.
 */
export interface BatchedFiles {
  create(path: string, bytes: Uint8Array): Promise<void>;
  /** The file's bytes; undefined when it does not exist. */
  read(path: string): Promise<Buffer | undefined>;
  /** Files done so far through the thread and through libuv's pool (tests, and a bench's notes). */
  counts(): { viaThread: number; viaPool: number };
  /** Ends the thread once what it was handed is done; later calls go through the pool. */
  close(): Promise<void>;
}

/** Files asked for in one turn from which the thread does them. */
export const BATCH_FROM = 8;
/** Most files, and bytes to create, in one message. */
const MAX_BATCH_FILES = 256;
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
/** How long an on-demand thread stays without a batch. */
const IDLE_MS = 5_000;

type Op =
  | { kind: 'create'; path: string; bytes: Uint8Array; resolve: () => void; reject: (err: Error) => void }
  | { kind: 'read'; path: string; resolve: (bytes: Buffer | undefined) => void; reject: (err: Error) => void };

/** The thread's report of a failed call: the error's fields. */
interface Failure {
  message: string;
  code?: string;
  errno?: number;
  syscall?: string;
}

/** What the thread answers: per op a failure or null, and the bytes read, one after another, in `buffer`. */
interface Answer {
  id: number;
  failures: (Failure | null)[];
  readEnds: number[];
  buffer: ArrayBuffer;
}

// The thread's script, evaluated: it needs no build step and no loader, from sources or dist alike, and reads
// as a script or a module (whatever the process's flags make of eval'd code).
const THREAD_SOURCE = `
const { readFileSync, writeFileSync } = process.getBuiltinModule('node:fs');
const { parentPort } = process.getBuiltinModule('node:worker_threads');
parentPort.on('message', ({ id, kinds, paths, ends, buffer }) => {
  const given = new Uint8Array(buffer);
  const read = [];
  const readEnds = [];
  let readBytes = 0;
  const failures = paths.map((path, index) => {
    try {
      if (kinds[index] === 'create') {
        writeFileSync(path, given.subarray(index === 0 ? 0 : ends[index - 1], ends[index]), { flag: 'wx', mode: 0o644 });
      } else {
        const bytes = readFileSync(path);
        read.push(bytes);
        readBytes += bytes.length;
      }
      readEnds.push(readBytes);
      return null;
    } catch (err) {
      readEnds.push(readBytes);
      return { message: err.message, code: err.code, errno: err.errno, syscall: err.syscall };
    }
  });
  const out = new Uint8Array(readBytes);
  let at = 0;
  for (const bytes of read) {
    out.set(bytes, at);
    at += bytes.length;
  }
  parentPort.postMessage({ id, failures, readEnds, buffer: out.buffer }, [out.buffer]);
});
`;

/**
 * `kept`: the thread starts now and stays until close() (a daemon's store). Its event loop holds 5 descriptors
 * (epoll, io_uring, eventfd, a pipe) and an isolate of a few MB: a thread that came with each burst and went
 * 5 s after it made a daemon's descriptor count swing by 5 with its load, which the soak's leak check read as
 * growth (21 -> 26; four cycles of start and idle stop came back to the same count each time). Otherwise
 * it starts with the first batch and ends after IDLE_MS without one (tools and tests that open many stores).
 */
export function createBatchedFiles(options: { kept?: boolean } = {}): BatchedFiles {
  let queued: Op[] = [];
  let flushScheduled = false;
  let worker: Worker | undefined;
  let idleTimer: NodeJS.Timeout | undefined;
  /** Batches sent and not answered, with the thread each went to (a thread that dies fails only its own). */
  const inFlight = new Map<number, { ops: Op[]; thread: Worker }>();
  let nextId = 0;
  let closed = false;
  let drained: (() => void)[] = [];
  const counts = { viaThread: 0, viaPool: 0 };

  function enqueue(op: Op): void {
    queued.push(op);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  }

  function flush(): void {
    flushScheduled = false;
    const batch = queued;
    queued = [];
    if (closed || (batch.length < BATCH_FROM && worker === undefined)) {
      counts.viaPool += batch.length;
      for (const op of batch) viaPool(op);
      return;
    }
    for (let at = 0; at < batch.length;) {
      let bytes = 0;
      let end = at;
      while (end < batch.length && end - at < MAX_BATCH_FILES) {
        const op = batch[end]!;
        const size = op.kind === 'create' ? op.bytes.length : 0;
        if (end > at && bytes + size > MAX_BATCH_BYTES) break;
        bytes += size;
        end++;
      }
      send(batch.slice(at, end), bytes);
      at = end;
    }
  }

  /** One message: the bytes to create copied into one fresh buffer, which is transferred, not cloned. */
  function send(ops: Op[], createBytes: number): void {
    const thread = worker ?? startThread();
    const buffer = new ArrayBuffer(createBytes);
    const view = new Uint8Array(buffer);
    const ends: number[] = [];
    let offset = 0;
    for (const op of ops) {
      if (op.kind === 'create') {
        view.set(op.bytes, offset);
        offset += op.bytes.length;
      }
      ends.push(offset);
    }
    const id = nextId++;
    inFlight.set(id, { ops, thread });
    counts.viaThread += ops.length;
    clearTimeout(idleTimer);
    // Held while work is in flight (a caller's await alone would not keep the process alive), not after.
    thread.ref();
    thread.postMessage({ id, kinds: ops.map((op) => op.kind), paths: ops.map((op) => op.path), ends, buffer }, [buffer]);
  }

  function answered(thread: Worker, { id, failures, readEnds, buffer }: Answer): void {
    const ops = inFlight.get(id)?.ops;
    inFlight.delete(id);
    const bytes = new Uint8Array(buffer);
    ops?.forEach((op, index) => {
      const failure = failures[index];
      if (op.kind === 'create') {
        if (failure === null || failure === undefined) op.resolve();
        else op.reject(errnoError(failure, op.path));
        return;
      }
      if (failure !== null && failure !== undefined) {
        if (failure.code === 'ENOENT') op.resolve(undefined);
        else op.reject(errnoError(failure, op.path));
        return;
      }
      const start = index === 0 ? 0 : readEnds[index - 1]!;
      op.resolve(Buffer.copyBytesFrom(bytes, start, readEnds[index]! - start));
    });
    if (inFlight.size === 0) {
      // A store is never closed by most of its owners: an idle thread must not keep a process alive.
      thread.unref();
      if (worker === thread && options.kept !== true) {
        idleTimer = setTimeout(() => void stopThread(thread), IDLE_MS);
        idleTimer.unref();
      }
    }
    settled();
  }

  function startThread(): Worker {
    // No inherited loader flags (tsx in tests): the script uses builtins only.
    const thread = new Worker(THREAD_SOURCE, { eval: true, execArgv: [] });
    thread.on('message', (answer: Answer) => answered(thread, answer));
    const failAll = (err: Error): void => {
      if (worker === thread) worker = undefined;
      for (const [id, batch] of inFlight) {
        if (batch.thread !== thread) continue;
        inFlight.delete(id);
        for (const op of batch.ops) op.reject(err);
      }
      settled();
    };
    thread.on('error', failAll);
    thread.on('exit', (code) => failAll(new Error(`file thread exited (code ${code}) with work in flight`)));
    worker = thread;
    return thread;
  }

  async function stopThread(thread: Worker): Promise<void> {
    if (worker !== thread || inFlight.size > 0) return;
    worker = undefined;
    await thread.terminate();
  }

  function settled(): void {
    if (inFlight.size > 0) return;
    for (const resolve of drained) resolve();
    drained = [];
  }

  if (options.kept === true) startThread().unref();

  return {
    create: (path, bytes) => new Promise<void>((resolve, reject) => enqueue({ kind: 'create', path, bytes, resolve, reject })),
    read: (path) => new Promise<Buffer | undefined>((resolve, reject) => enqueue({ kind: 'read', path, resolve, reject })),
    counts: () => ({ ...counts }),
    async close() {
      closed = true;
      clearTimeout(idleTimer);
      const thread = worker;
      worker = undefined;
      if (inFlight.size > 0) await new Promise<void>((resolve) => drained.push(resolve));
      await thread?.terminate();
    },
  };
}

function viaPool(op: Op): void {
  if (op.kind === 'create') {
    writeFile(op.path, op.bytes, { flag: 'wx', mode: 0o644 }).then(op.resolve, op.reject);
    return;
  }
  readIfPresent(op.path).then(op.resolve, op.reject);
}

/** The thread's report as the Error the async call would have rejected with. */
function errnoError(failure: Failure, path: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(failure.message);
  if (failure.code !== undefined) err.code = failure.code;
  if (failure.errno !== undefined) err.errno = failure.errno;
  if (failure.syscall !== undefined) err.syscall = failure.syscall;
  err.path = path;
  return err;
}
