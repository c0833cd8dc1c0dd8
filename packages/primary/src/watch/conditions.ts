/**
 * Promises that resolve once a condition holds. The owner calls `notify()`
 * wherever the state the conditions read may have changed; each waiter's
 * condition is re-evaluated then, and only then.
 */
export interface Conditions {
  until(ready: () => boolean): Promise<void>;
  notify(): void;
}

export function createConditions(): Conditions {
  let waiters: Array<{ ready: () => boolean; resolve: () => void }> = [];
  return {
    until(ready) {
      return new Promise<void>((resolve) => {
        if (ready()) resolve();
        else waiters.push({ ready, resolve });
      });
    },
    notify() {
      if (waiters.length === 0) return;
      const still: typeof waiters = [];
      for (const waiter of waiters) {
        if (waiter.ready()) waiter.resolve();
        else still.push(waiter);
      }
      waiters = still;
    },
  };
}
