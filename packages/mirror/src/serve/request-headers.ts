/** The three request headers a repository answer depends on. */
export interface AnswerHeaders {
  acceptEncoding: string | undefined;
  ifNoneMatch: string | undefined;
  ifModifiedSince: string | undefined;
}

/**
 * Records one request header in `into` if it is one of the three the answer
 * depends on. 'repeated' means the request sent it twice: Node would merge the
 * values, so the fast path hands such a request to the fastify route, which
 * answers with Node's merged value.
 */
export function takeAnswerHeader(into: AnswerHeaders, lowerName: string, value: string): 'taken' | 'repeated' | 'other' {
  switch (lowerName) {
    case 'accept-encoding':
      if (into.acceptEncoding !== undefined) return 'repeated';
      into.acceptEncoding = value;
      return 'taken';
    case 'if-none-match':
      if (into.ifNoneMatch !== undefined) return 'repeated';
      into.ifNoneMatch = value;
      return 'taken';
    case 'if-modified-since':
      if (into.ifModifiedSince !== undefined) return 'repeated';
      into.ifModifiedSince = value;
      return 'taken';
    default:
      return 'other';
  }
}
