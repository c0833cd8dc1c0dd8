import { createLogger } from '@metasync/shared/daemon';
import { describe, expect, it } from 'vitest';
import { createPathSettler } from './path-settler.js';
import type { SourceFile } from './paths.js';
import { prepareRead, type PreparedRead } from './prepare.js';

const log = createLogger({ name: 'path-settler-test', level: 'silent' });

/** A source of JSON files in memory; `broken` paths never parse. */
function settlerOver(files: Map<string, string>, broken: Set<string>) {
  const completed: string[] = [];
  let progress = 0;
  const fileOf = (path: string): SourceFile => {
    const bytes = Buffer.from(files.get(path) ?? '');
    return { bytes, size: bytes.length, mtimeMs: 1, ino: 7 };
  };
  const settler = createPathSettler({
    log,
    read: async (path): Promise<PreparedRead> => {
      if (!files.has(path)) return { kind: 'missing' };
      if (broken.has(path)) return { kind: 'refused', reason: 'broken on purpose' };
      return prepareRead(path, { kind: 'file', file: fileOf(path) });
    },
    stat: async (path) => (files.has(path) ? { size: fileOf(path).size, mtimeMs: 1, ino: 7 } : undefined),
    stabilityWindowMs: 5,
    jsonSettleMs: 50,
    recheckDelaysMs: [2, 5],
    readConcurrency: 8,
    waitForRoom: () => undefined,
    onTouch: () => {},
    onComplete: (path) => completed.push(path),
    onProgress: () => progress++,
  });
  return { settler, completed, progress: () => progress };
}

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('path settler', () => {
  it('keeps no state for a path once it is published and rechecked, or gone', async () => {
    const files = new Map(Array.from({ length: 200 }, (_, i) => [`include/acme-pkg${i}.json`, `{"n":${i}}`] as const));
    const { settler, completed } = settlerOver(files, new Set());
    for (const path of files.keys()) settler.touch(path);
    settler.touch('include/acme-gone.json');
    expect(settler.tracks('include/acme-pkg0.json')).toBe(true);
    await until(() => completed.length === 200 && settler.isSettled());
    // Rechecks (2 and 5 ms after each read) are not "busy", so wait for them to run out too.
    await until(() => [...files.keys()].every((path) => !settler.tracks(path)));
    expect(settler.tracks('include/acme-gone.json')).toBe(false);
    await settler.close();
  });

  it('remembers a refused path until it is touched again or forgotten', async () => {
    const files = new Map([['include/acme-bad.json', '{']]);
    const broken = new Set(['include/acme-bad.json']);
    const { settler, completed } = settlerOver(files, broken);
    settler.touch('include/acme-bad.json');
    await until(() => settler.isSettled());
    expect(settler.tracks('include/acme-bad.json')).toBe(true);
    broken.delete('include/acme-bad.json');
    files.set('include/acme-bad.json', '{"fixed":true}');
    settler.touch('include/acme-bad.json');
    await until(() => completed.length === 1);
    await until(() => !settler.tracks('include/acme-bad.json'));
    settler.touch('include/acme-bad.json');
    settler.forget('include/acme-bad.json');
    expect(settler.tracks('include/acme-bad.json')).toBe(false);
    await settler.close();
  });

  it('publishes the newest content when a path is touched again while its old read is in flight', async () => {
    const files = new Map([['include/acme-a.json', '{"v":1}']]);
    const { settler, completed } = settlerOver(files, new Set());
    settler.touch('include/acme-a.json');
    files.set('include/acme-a.json', '{"v":2}');
    settler.touch('include/acme-a.json');
    await until(() => settler.isSettled() && !settler.tracks('include/acme-a.json'));
    // The first read may or may not have run before the second touch; the last publish is the newest.
    expect(completed.length).toBeGreaterThanOrEqual(1);
    await settler.close();
  });
});
