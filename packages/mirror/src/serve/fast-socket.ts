import { maxHeaderSize, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { BuiltHeaders, FastAnswer, FastPath, FastRequest } from './fast-path.js';
import { takeAnswerHeader } from './request-headers.js';

/**
 * A front for node's http server that answers the commonest requests itself,
 * straight on the socket: node's request/response objects cost about as much
 * CPU per request as the whole of nginx's work (the serve bench compares with
 * nginx `gzip_static`, 1 worker), so the fast path alone cannot reach it.
 *
 *   accept -> socket adopted here
 *     data -> complete request head? --no--------------------------------+
 *               | yes                                                   |
 *             strict parse: `GET|HEAD <path> HTTP/1.1`, plain header lines, Host,
 *             no body (no Content-Length / Transfer-Encoding), no Upgrade/Expect,
 *             Connection absent or keep-alive; fastPath.answer() has an answer?
 *               | yes: write the answer, next request in the buffer
 *               | no / anything unusual / a partial head / a reader behind |
 *             hand the socket and every unanswered byte to node's http <-+
 *             server (its own connection listener), which owns it from then on
 *
 * The strict parse is the security boundary: whatever it does not fully
 * understand goes to llhttp and fastify unchanged (so every malformed, hostile
 * or unusual request is answered exactly as without this front). Responses are
 * written in request order: a hand-off happens only after the answers before it
 * were written. Node's limits stay in force: a head over maxHeaderSize, a
 * slowloris' partial head end up in node's server (431, 408); a pipelining
 * client that stops reading gets no more answers (nor reads) past 1 MiB queued
 * and is closed at the server's socket timeout; an adopted socket idle for the
 * headers or keep-alive timeout (the shorter) is closed.
 */
export interface FastSocketOptions {
  server: Server;
  fastPath: FastPath;
}

const HEAD_END = Buffer.from('\r\n\r\n');
/** Stop answering (and reading) while this much response data waits for a slow reader (pipelining clients). */
const MAX_QUEUED_BYTES = 1024 * 1024;
const REQUEST_LINE = /^(GET|HEAD) (\/[!-~]*) HTTP\/1\.1$/;
/** Printable ASCII, tab, and CR/LF only in pairs. */
const SAFE_HEAD = /^[\t\x20-\x7e]*(?:\r\n[\t\x20-\x7e]*)*$/;
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const STATUS_LINE = { 200: 'HTTP/1.1 200 OK\r\n', 304: 'HTTP/1.1 304 Not Modified\r\n' } as const;

export function frontWithFastSockets(options: FastSocketOptions): void {
  const { server, fastPath } = options;
  const [httpConnectionListener, ...others] = server.listeners('connection') as ((socket: Socket) => void)[];
  if (httpConnectionListener === undefined || others.length > 0)
    throw new Error(
      `expected node's one http connection listener, found ${others.length + (httpConnectionListener === undefined ? 0 : 1)}`,
    );
  server.removeListener('connection', httpConnectionListener);
  // Set by createServer({ maxHeaderSize }) though not in node's types; node's global default otherwise.
  const maxHeaderBytes = (server as Server & { maxHeaderSize?: number }).maxHeaderSize ?? maxHeaderSize;
  const adopted = new Set<Socket>();
  let closing = false;
  let dateSecond = -1;
  let dateLines = Buffer.alloc(0);

  /** Date, Connection and Keep-Alive lines and the blank line: rebuilt once a second. */
  function trailingLines(): Buffer {
    const nowMs = Date.now();
    const second = Math.floor(nowMs / 1000);
    if (second !== dateSecond) {
      dateSecond = second;
      const keepAliveSec = Math.max(1, Math.floor(server.keepAliveTimeout / 1000));
      dateLines = Buffer.from(
        `date: ${new Date(second * 1000).toUTCString()}\r\nconnection: keep-alive\r\nkeep-alive: timeout=${keepAliveSec}\r\n\r\n`,
        'latin1',
      );
    }
    return dateLines;
  }

  function handOff(socket: Socket, state: SocketState, unanswered: Buffer | undefined): void {
    adopted.delete(socket);
    socket.removeListener('data', state.onData);
    if (socket.isPaused()) socket.resume();
    socket.removeListener('timeout', state.onTimeout);
    socket.removeListener('error', state.onError);
    socket.setTimeout(0);
    if (unanswered !== undefined && unanswered.length > 0) socket.unshift(unanswered);
    httpConnectionListener!.call(server, socket);
  }

  function write(socket: Socket, answer: FastAnswer): void {
    socket.cork();
    socket.write(rawHead(answer.status, answer.headers));
    socket.write(trailingLines());
    if (answer.body !== undefined) socket.write(answer.body);
    socket.uncork();
  }

  function adopt(socket: Socket): void {
    if (closing) {
      socket.destroy();
      return;
    }
    adopted.add(socket);
    socket.setNoDelay(true);
    // Idle before the first request (node: headers timeout) or after an answer (node: keep-alive timeout).
    const idleTimeoutMs = Math.min(server.headersTimeout, server.keepAliveTimeout);
    socket.setTimeout(idleTimeoutMs);
    /** Waits with the unanswered rest of a read until the client reads what was written (bounded: one read). */
    let waiting = false;
    function waitForDrain(rest: Buffer): void {
      const held = Buffer.from(rest);
      waiting = true;
      socket.pause();
      // A reader that stopped reading: node's socket timeout (inactivity while writing) applies.
      socket.setTimeout(server.timeout > 0 ? server.timeout : idleTimeoutMs);
      socket.once('drain', () => {
        waiting = false;
        socket.setTimeout(idleTimeoutMs);
        state.onData(held);
        if (adopted.has(socket) && !waiting) socket.resume();
      });
    }
    const state: SocketState = {
      onData(chunk: Buffer) {
        let offset = 0;
        for (;;) {
          const end = chunk.indexOf(HEAD_END, offset);
          if (end === -1) break;
          const request = end - offset <= maxHeaderBytes ? parseHead(chunk.toString('latin1', offset, end)) : undefined;
          const answer = request === undefined ? undefined : fastPath.answer(request);
          if (answer === undefined) {
            handOff(socket, state, chunk.subarray(offset));
            return;
          }
          write(socket, answer);
          offset = end + HEAD_END.length;
          // A client that pipelines faster than it reads: answer the rest once it has read these.
          if (socket.writableLength > MAX_QUEUED_BYTES && offset < chunk.length) {
            waitForDrain(chunk.subarray(offset));
            return;
          }
        }
        if (offset < chunk.length) {
          // A head split across reads (rare for a GET; slowloris): node's parser and its headers timeout take it.
          handOff(socket, state, chunk.subarray(offset));
          return;
        }
        if (closing) socket.end();
      },
      onTimeout() {
        socket.destroy();
      },
      onError() {
        // A client that resets or breaks its connection: nothing to answer any more.
        socket.destroy();
      },
    };
    socket.on('data', state.onData);
    socket.on('timeout', state.onTimeout);
    socket.on('error', state.onError);
    socket.once('close', () => adopted.delete(socket));
  }

  server.on('connection', adopt);

  /** Between requests every adopted socket is idle (answers are written synchronously): close them. */
  function endIdle(): void {
    for (const socket of adopted) socket.end();
  }
  const close = server.close.bind(server);
  server.close = (callback?: (err?: Error) => void) => {
    closing = true;
    endIdle();
    return close(callback);
  };
  const closeIdleConnections = server.closeIdleConnections.bind(server);
  server.closeIdleConnections = () => {
    endIdle();
    closeIdleConnections();
  };
  const closeAllConnections = server.closeAllConnections.bind(server);
  server.closeAllConnections = () => {
    for (const socket of adopted) socket.destroy();
    closeAllConnections();
  };
}

interface SocketState {
  onData(chunk: Buffer): void;
  onTimeout(): void;
  onError(): void;
}

/** The status line and header lines of a built header list (its values are generated here, never from a request). */
function rawHead(status: 200 | 304, headers: BuiltHeaders): Buffer {
  if (headers.raw === undefined) {
    let text: string = STATUS_LINE[status];
    for (let i = 0; i < headers.list.length; i += 2) text += `${String(headers.list[i])}: ${String(headers.list[i + 1])}\r\n`;
    // Outside node's shared 8 KiB pool: a pooled slice would keep its whole slab alive for as long as the memo holds these headers.
    const raw = Buffer.allocUnsafeSlow(Buffer.byteLength(text, 'latin1'));
    raw.write(text, 'latin1');
    headers.raw = raw;
  }
  return headers.raw;
}

/**
 * A request head (without its final blank line) the fast path may answer, or
 * undefined for anything else, which then goes to node's parser unchanged.
 */
export function parseHead(head: string): FastRequest | undefined {
  if (!SAFE_HEAD.test(head)) return undefined;
  const lineEnd = head.indexOf('\r\n');
  const requestLine = REQUEST_LINE.exec(lineEnd === -1 ? head : head.slice(0, lineEnd));
  if (requestLine === null) return undefined;
  const request: FastRequest = {
    method: requestLine[1] as 'GET' | 'HEAD',
    url: requestLine[2]!,
    acceptEncoding: undefined,
    ifNoneMatch: undefined,
    ifModifiedSince: undefined,
  };
  let host = false;
  let position = lineEnd === -1 ? head.length : lineEnd + 2;
  while (position < head.length) {
    let next = head.indexOf('\r\n', position);
    if (next === -1) next = head.length;
    const colon = head.indexOf(':', position);
    if (colon === -1 || colon >= next) return undefined;
    const name = head.slice(position, colon);
    if (!FIELD_NAME.test(name)) return undefined;
    const value = head.slice(colon + 1, next).replace(/^[ \t]+|[ \t]+$/g, '');
    position = next + 2;
    const lower = name.toLowerCase();
    const taken = takeAnswerHeader(request, lower, value);
    if (taken === 'repeated') return undefined;
    if (taken === 'taken') continue;
    switch (lower) {
      case 'host':
        if (host) return undefined;
        host = true;
        break;
      case 'connection':
        if (value.toLowerCase() !== 'keep-alive') return undefined;
        break;
      case 'content-length':
      case 'transfer-encoding':
      case 'upgrade':
      case 'expect':
        return undefined;
      default:
        break;
    }
  }
  return host ? request : undefined;
}
