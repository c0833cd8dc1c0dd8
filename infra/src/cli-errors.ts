import { isMetasyncError } from '@metasync/shared';
import { EXIT, exitCodeFor } from './exit-codes.js';

/**
 * What the CLI prints and returns for an error that reached the top. Errors
 * with a METASYNC_ERR_ code print `CODE: message` and their documented exit
 * code. A bare Node error that a user can cause (a network call refused, a
 * file that is missing) still gets a one-line message and its exit code:
 * a stack trace is only for a bug, never for an operator's mistake.
 */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
]);
const FILE_CODES = new Set(['ENOENT', 'EACCES', 'EISDIR', 'ENOTDIR', 'EPERM', 'EROFS']);

export function describeFailure(err: unknown): { exitCode: number; text: string } {
  if (isMetasyncError(err)) return { exitCode: exitCodeFor(err.code), text: `${err.code}: ${err.message}` };
  const code = errnoCode(err);
  const message = err instanceof Error ? err.message : String(err);
  if (code !== undefined && NETWORK_CODES.has(code)) return { exitCode: EXIT.unreachable, text: `cannot reach a server: ${message}` };
  if (code !== undefined && FILE_CODES.has(code)) return { exitCode: EXIT.usage, text: `cannot use a file: ${message}` };
  return {
    exitCode: EXIT.failure,
    text: `unexpected error (a bug; please report it): ${err instanceof Error ? (err.stack ?? message) : message}`,
  };
}

/** The errno-style code of an error or of its cause (undici wraps the socket error). */
function errnoCode(err: unknown): string | undefined {
  for (let current = err, depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || FILE_CODES.has(code))) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
