import { describe, expect, it } from 'vitest';
import { sha256Hex } from '@metasync/shared';
import { judgeRead, type JsonWait } from './content.js';
import type { SourceRead } from './paths.js';
import { prepareRead } from './prepare.js';

const fresh: JsonWait = { failSinceMs: undefined, attempts: 0 };

function fileRead(text: string): SourceRead {
  return { kind: 'file', file: { bytes: Buffer.from(text), size: text.length, mtimeMs: 1, ino: 1 } };
}

/** The checks prepare.ts applies to a read (in a prepare thread), then the judgement. */
async function judge(path: string, result: SourceRead, wait: JsonWait = fresh, nowMs = 10_000) {
  return judgeRead({ result: await prepareRead(path, result), wait, nowMs, jsonSettleMs: 2_000 });
}

describe('judgeRead', () => {
  it('takes JSON that parses as complete and clears the wait', async () => {
    const read = fileRead('{"packages":[]}');
    const judged = await judge('packages.json', read, { failSinceMs: 9_000, attempts: 3 });
    const bytes = Buffer.from('{"packages":[]}');
    expect(judged.verdict).toMatchObject({
      kind: 'complete',
      file: (read as { file: unknown }).file,
      stored: { content: bytes, sha256: sha256Hex(bytes) },
    });
    expect(judged.wait).toEqual({ failSinceMs: undefined, attempts: 3 });
  });

  it('reads JSON that does not parse again, backing off from 25 ms to at most 400 ms', async () => {
    const first = await judge('include/all.json', fileRead('{"ok":'));
    expect(first).toEqual({ verdict: { kind: 'retry', delayMs: 25 }, wait: { failSinceMs: 10_000, attempts: 1 } });
    const later = await judge('include/all.json', fileRead('{"ok":'), { failSinceMs: 10_000, attempts: 6 }, 11_000);
    expect(later).toEqual({ verdict: { kind: 'retry', delayMs: 400 }, wait: { failSinceMs: 10_000, attempts: 7 } });
  });

  it('refuses JSON that still does not parse jsonSettleMs after it first failed', async () => {
    const judged = await judge('include/all.json', fileRead('{"ok":'), { failSinceMs: 8_000, attempts: 5 });
    expect(judged.verdict).toEqual({ kind: 'refuse', reason: 'not valid JSON 2000 ms after its last change' });
    expect(judged.wait).toEqual({ failSinceMs: undefined, attempts: 5 });
  });

  it('takes a non-JSON file as it is, without parsing it', async () => {
    expect((await judge('dist/readme.txt', fileRead('{"not json'))).verdict.kind).toBe('complete');
  });

  it('refuses a p2 file that holds another package than its path names', async () => {
    const judged = await judge('p2/acme/foo.json', fileRead('{"packages":{"evil/other":[]}}'));
    expect(judged.verdict).toEqual({ kind: 'refuse', reason: 'p2 file for acme/foo holds ["evil/other"]' });
  });

  it('passes a refused read on and has nothing to do for a missing or skipped one', async () => {
    expect((await judge('x.json', { kind: 'refused', reason: 'not a valid repository path' })).verdict).toEqual({
      kind: 'refuse',
      reason: 'not a valid repository path',
    });
    expect((await judge('x.json', { kind: 'missing' })).verdict).toEqual({ kind: 'none' });
    expect(await judge('x.json', { kind: 'skipped' }, { failSinceMs: 5, attempts: 2 })).toEqual({
      verdict: { kind: 'none' },
      wait: { failSinceMs: 5, attempts: 2 },
    });
  });
});
