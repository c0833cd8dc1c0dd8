import { describe, expect, it } from 'vitest';
import { parseHead } from './fast-socket.js';

const plain = 'GET /p2/acme/foo.json HTTP/1.1\r\nHost: m\r\nAccept-Encoding: gzip, br\r\nIf-Modified-Since: Sun, 22 Nov 2026 06:00:00 GMT';

describe('fast socket request parsing', () => {
  it('reads the method, target and the three headers an answer depends on', () => {
    expect(parseHead(plain)).toEqual({
      method: 'GET',
      url: '/p2/acme/foo.json',
      acceptEncoding: 'gzip, br',
      ifNoneMatch: undefined,
      ifModifiedSince: 'Sun, 22 Nov 2026 06:00:00 GMT',
    });
    expect(parseHead('HEAD /packages.json HTTP/1.1\r\nhost: m\r\nconnection: Keep-Alive\r\nif-none-match:  "abc" ')).toMatchObject({
      method: 'HEAD',
      ifNoneMatch: '"abc"',
    });
  });

  it.each([
    ['a body (Content-Length)', `${plain}\r\nContent-Length: 5`],
    ['a zero Content-Length', `${plain}\r\nContent-Length: 0`],
    ['Transfer-Encoding', `${plain}\r\nTransfer-Encoding: chunked`],
    ['no Host', 'GET /p2/a/b.json HTTP/1.1\r\nAccept: */*'],
    ['two Hosts', `${plain}\r\nHost: other`],
    ['two Accept-Encodings', `${plain}\r\nAccept-Encoding: identity`],
    ['two If-None-Match', 'GET /x HTTP/1.1\r\nHost: m\r\nIf-None-Match: "a"\r\nIf-None-Match: "b"'],
    ['HTTP/1.0', 'GET /p2/a/b.json HTTP/1.0\r\nHost: m'],
    ['another method', 'POST /p2/a/b.json HTTP/1.1\r\nHost: m'],
    ['a lowercase method', 'get /p2/a/b.json HTTP/1.1\r\nHost: m'],
    ['an absolute-form target', 'GET http://evil.example/p2/a/b.json HTTP/1.1\r\nHost: m'],
    ['a folded header line', `${plain}\r\n  continued`],
    ['a bare LF', 'GET /p2/a/b.json HTTP/1.1\nHost: m'],
    ['a bare CR inside a value', 'GET /p2/a/b.json HTTP/1.1\r\nHost: m\rX: y'],
    ['a NUL', 'GET /p2/a/b.json HTTP/1.1\r\nHost: m\u0000'],
    ['non-ASCII bytes', 'GET /p2/a/b.json HTTP/1.1\r\nHost: m\r\nX: caf\u00e9'],
    ['a space before the colon', 'GET /p2/a/b.json HTTP/1.1\r\nHost : m'],
    ['a line without a colon', `${plain}\r\nnonsense`],
    ['Connection: close', `${plain}\r\nConnection: close`],
    ['Connection: upgrade', `${plain}\r\nConnection: Upgrade\r\nUpgrade: websocket`],
    ['Expect', `${plain}\r\nExpect: 100-continue`],
    ['two spaces in the request line', 'GET  /p2/a/b.json HTTP/1.1\r\nHost: m'],
  ])('leaves a request with %s to node', (_what, head) => {
    expect(parseHead(head)).toBeUndefined();
  });
});
