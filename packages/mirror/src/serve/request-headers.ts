/** The three request headers a fast-path answer depends on. */
export interface AnswerHeaders {
  acceptEncoding: string | undefined;
  ifNoneMatch: string | undefined;
  ifModifiedSince: string | undefined;
}

/**
 * Records one request header in `into` if it is one of the three the answer
 * depends on. 'repeated' means the request sent it twice: node would merge the
 * values, so both fronts hand such a request to the careful (fastify) route.
 * Both fronts (node's raw header list and the raw-socket parser) read headers
 * through this one function, so they cannot disagree on which ones count.
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
