import { describe, expect, it } from 'vitest';
import { createPathKeys } from './path-keys.js';

describe('path keys', () => {
  it('numbers paths densely in insertion order across growth, and finds each again', () => {
    const keys = createPathKeys(16);
    const paths = Array.from({ length: 50_000 }, (_, i) => `p2/vendor${i % 313}/package-${i}.json`);
    paths.forEach((path, i) => expect(keys.add(path)).toBe(i));
    expect(keys.size).toBe(paths.length);
    expect(paths.every((path, i) => keys.find(path) === i)).toBe(true);
    expect(keys.add(paths[123]!)).toBe(123);
    expect(keys.size).toBe(paths.length);
  });

  it('tells near paths apart: one character, case, order, non-ASCII', () => {
    const keys = createPathKeys();
    for (const path of ['p2/a/b.json', 'p2/a/c.json', 'p2/A/b.json', 'p2/b/a.json', 'p2/a/b.json~', 'p2/é/b.json', 'p2/e/b.json'])
      keys.add(path);
    expect(keys.size).toBe(7);
    expect(keys.find('p2/a/b.jso')).toBe(-1);
    expect(keys.find('')).toBe(-1);
  });
});
