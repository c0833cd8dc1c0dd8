/**
 * Per-key combining queue. Operations on one key never run concurrently; the
 * ones that arrive while a batch of that key is running are handed to the next
 * run together, so N concurrent updates of one package cost one read, one
 * render and one submit instead of N serialized commits.
 *
 *   enqueue(key, op) -> pending[key] --(key idle)--> run(key, [op, op, ...]) -> each op settled
 */
export interface BatchItem<Op, Result> {
  op: Op;
  resolve(result: Result): void;
  reject(err: unknown): void;
}

export type BatchRunner<Op, Result> = (key: string, batch: ReadonlyArray<BatchItem<Op, Result>>) => Promise<void>;

export function createKeyedBatcher<Op, Result>(run: BatchRunner<Op, Result>): (key: string, op: Op) => Promise<Result> {
  const pending = new Map<string, Array<BatchItem<Op, Result>>>();
  const running = new Set<string>();

  async function drain(key: string): Promise<void> {
    running.add(key);
    try {
      for (let batch = pending.get(key); batch !== undefined; batch = pending.get(key)) {
        pending.delete(key);
        const settled = new Set<BatchItem<Op, Result>>();
        const tracked = batch.map((item) => ({
          op: item.op,
          resolve: (result: Result) => (settled.add(item), item.resolve(result)),
          reject: (err: unknown) => (settled.add(item), item.reject(err)),
        }));
        try {
          await run(key, tracked);
        } catch (err) {
          for (const item of batch) if (!settled.has(item)) item.reject(err);
        }
        for (const item of batch) {
          if (!settled.has(item)) item.reject(new Error(`batch runner for ${key} left an operation unsettled`));
        }
      }
    } finally {
      running.delete(key);
    }
  }

  return (key, op) =>
    new Promise<Result>((resolve, reject) => {
      const queue = pending.get(key);
      if (queue === undefined) pending.set(key, [{ op, resolve, reject }]);
      else queue.push({ op, resolve, reject });
      if (!running.has(key)) void drain(key);
    });
}
