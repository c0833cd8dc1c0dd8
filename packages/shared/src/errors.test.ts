import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from './errors.js';

describe('error registry', () => {
  const docs = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const documented = new Set([...docs.matchAll(/`(METASYNC_ERR_[A-Z0-9_]+)`/g)].map((m) => m[1]));

  it('documents every code in docs/errors.md', () => {
    const undocumented = Object.keys(ERROR_CODES).filter((code) => !documented.has(code));
    expect(undocumented).toEqual([]);
  });

  it('documents no code that the registry lacks', () => {
    const unknown = [...documented].filter((code) => !(code! in ERROR_CODES));
    expect(unknown).toEqual([]);
  });
});
