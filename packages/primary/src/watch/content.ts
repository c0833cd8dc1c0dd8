/**
 * What the watcher checks in a file's bytes before publishing it: that JSON
 * parses (the completeness rule) and that a p2 file holds its own package.
 * prepare.ts applies both to a read; `judgeRead` decides what the result means
 * for the path's wait.
 */
import { packageKeyFromP2Path } from '@metasync/shared';
import type { SourceFile } from './paths.js';
import type { PreparedRead, StoredContent } from './prepare.js';

export const NOT_JSON = Symbol('not json');

export function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    return NOT_JSON; // expected while a writer is mid-file
  }
}

/** composer/mirror's rule: a p2 file must hold exactly the package its path names. */
export function p2Problem(path: string, document: unknown): string | undefined {
  const key = packageKeyFromP2Path(path);
  if (key === undefined) return undefined;
  const name = key.replace(/~dev$/, '');
  const packages = (document as { packages?: unknown } | null)?.packages;
  if (typeof packages !== 'object' || packages === null || Array.isArray(packages)) return 'p2 file has no "packages" object';
  const names = Object.keys(packages);
  if (names.length !== 1 || names[0] !== name) return `p2 file for ${name} holds ${JSON.stringify(names.slice(0, 3))}`;
  return undefined;
}

/** How long a path has been waiting for its JSON to parse. */
export interface JsonWait {
  failSinceMs: number | undefined;
  attempts: number;
}

export type ReadVerdict =
  /** Missing (an unlink event follows) or skipped: nothing to publish. */
  | { kind: 'none' }
  | { kind: 'refuse'; reason: string }
  /** JSON that does not parse yet: read again after `delayMs`. */
  | { kind: 'retry'; delayMs: number }
  | { kind: 'complete'; file: SourceFile; stored: StoredContent };

/**
 * The completeness rule applied to one read: is this file ready to publish,
 * to be refused, or to be read again? Pure: returns the path's next JsonWait.
 */
export function judgeRead(options: { result: PreparedRead; wait: JsonWait; nowMs: number; jsonSettleMs: number }): {
  verdict: ReadVerdict;
  wait: JsonWait;
} {
  const { result, wait, nowMs, jsonSettleMs } = options;
  if (result.kind === 'missing' || result.kind === 'skipped') return { verdict: { kind: 'none' }, wait };
  if (result.kind === 'not-json') {
    const failSinceMs = wait.failSinceMs ?? nowMs;
    if (nowMs - failSinceMs >= jsonSettleMs) {
      return {
        verdict: { kind: 'refuse', reason: `not valid JSON ${jsonSettleMs} ms after its last change` },
        wait: { failSinceMs: undefined, attempts: wait.attempts },
      };
    }
    const delayMs = Math.min(25 * 2 ** wait.attempts, 400);
    return { verdict: { kind: 'retry', delayMs }, wait: { failSinceMs, attempts: wait.attempts + 1 } };
  }
  const settled = { failSinceMs: undefined, attempts: wait.attempts };
  if (result.kind === 'refused') return { verdict: { kind: 'refuse', reason: result.reason }, wait: settled };
  return { verdict: { kind: 'complete', file: result.file, stored: result.stored }, wait: settled };
}
