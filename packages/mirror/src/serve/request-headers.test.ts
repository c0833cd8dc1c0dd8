import { describe, expect, it } from 'vitest';
import { takeAnswerHeader, type AnswerHeaders } from './request-headers.js';

const empty = (): AnswerHeaders => ({ acceptEncoding: undefined, ifNoneMatch: undefined, ifModifiedSince: undefined });

describe('takeAnswerHeader', () => {
  it('records each of the three headers the answer depends on', () => {
    const headers = empty();
    expect(takeAnswerHeader(headers, 'accept-encoding', 'br, gzip')).toBe('taken');
    expect(takeAnswerHeader(headers, 'if-none-match', '"abc"')).toBe('taken');
    expect(takeAnswerHeader(headers, 'if-modified-since', 'Sat, 05 Dec 2026 10:00:00 GMT')).toBe('taken');
    expect(headers).toEqual({ acceptEncoding: 'br, gzip', ifNoneMatch: '"abc"', ifModifiedSince: 'Sat, 05 Dec 2026 10:00:00 GMT' });
  });

  it('reports a second copy of a header as repeated and keeps the first value', () => {
    const headers = empty();
    takeAnswerHeader(headers, 'if-none-match', '"a"');
    expect(takeAnswerHeader(headers, 'if-none-match', '"b"')).toBe('repeated');
    expect(headers.ifNoneMatch).toBe('"a"');
    // An empty value still counts as sent: a second one is a repeat, not a first.
    takeAnswerHeader(headers, 'accept-encoding', '');
    expect(takeAnswerHeader(headers, 'accept-encoding', 'gzip')).toBe('repeated');
  });

  it('leaves every other header to the caller', () => {
    const headers = empty();
    for (const name of ['host', 'connection', 'accept', 'Accept-Encoding', 'if-match'])
      expect(takeAnswerHeader(headers, name, 'x')).toBe('other');
    expect(headers).toEqual(empty());
  });
});
