import type { IncomingMessage, ServerResponse } from 'node:http';
import { takeAnswerHeader } from './request-headers.js';
import type { AnswerRequest, RepositoryAnswers } from './repository-answer.js';

/**
 * The hot path of a mirror, in Node's request handler before fastify routes:
 * a GET/HEAD of a plain repository URL that is in the index gets the answer
 * of repository-answer.ts (the one the fastify route gives too), written with
 * one writeHead and one end. Node has parsed the request (llhttp) and applies
 * every limit of the server; this only skips fastify's per-request objects.
 *
 *   request ── not GET/HEAD, not a plain URL, a repeated answer header, a
 *              reserved path (the daemon's own routes: /health/*, /metrics...;
 *              answer() says 'absent' for them first), not in the index, a body
 *              to stream, unreadable ──> fastify
 *      │ else
 *   writeHead(status, header list), end(body)
 *
 * Allocation-light: the request fields are gathered in one reused object (the
 * answer is built synchronously, so no two requests share it at once); the
 * answer is a header list of strings that already exist (repository-answer.ts).
 */
export interface FastPath {
  /** True when it answered; false: fastify must route the request. */
  tryServe(req: IncomingMessage, res: ServerResponse): boolean;
}

/** Only URLs built from repository-path characters, without a query: anything else takes the careful route. */
const PLAIN_URL = /^\/[A-Za-z0-9_~@+$=-][A-Za-z0-9_.~@+$=/-]*$/;

export function createFastPath(answers: RepositoryAnswers): FastPath {
  const request: AnswerRequest = { method: 'GET', path: '', acceptEncoding: undefined, ifNoneMatch: undefined, ifModifiedSince: undefined };
  return {
    tryServe(req, res) {
      const method = req.method;
      if (method !== 'GET' && method !== 'HEAD') return false;
      const url = req.url ?? '';
      if (!PLAIN_URL.test(url)) return false;
      const path = url.slice(1);
      request.method = method;
      request.path = path;
      if (!readAnswerHeaders(request, req.rawHeaders)) return false;
      const answered = answers.answer(request);
      if (typeof answered === 'string' || answered.file !== undefined) return false;
      res.writeHead(answered.status, answered.headers);
      res.end(answered.body);
      return true;
    },
  };
}

/**
 * The three request headers the answer depends on, read from the raw list
 * (building `req.headers` would copy every header). False when one is
 * repeated: Node would merge it, so the route answers with Node's merged value.
 */
function readAnswerHeaders(into: AnswerRequest, raw: readonly string[]): boolean {
  into.acceptEncoding = undefined;
  into.ifNoneMatch = undefined;
  into.ifModifiedSince = undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const length = name.length;
    // Only the three names' lengths (15, 13, 17) are worth lowercasing.
    if (length !== 15 && length !== 13 && length !== 17) continue;
    if (takeAnswerHeader(into, name.toLowerCase(), raw[i + 1]!) === 'repeated') return false;
  }
  return true;
}
