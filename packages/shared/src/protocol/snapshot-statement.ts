import { createHash } from 'node:crypto';
import { z } from 'zod';
import { metasyncError } from '../errors.js';
import { isSha256Hex } from './content-address.js';
import { signBody, verifyBody, type SigningKey, type VerifyOptions } from './signing.js';

/**
 * A snapshot is signed through a statement of its body rather than over the body itself:
 *
 *   statement = {"kind":"snapshot-statement","seq":S,"time":T,"length":L,"sha256":"<hex of the body>"}
 *   x-metasync-signature:           <keyId>.<Ed25519 over the statement bytes>
 *   x-metasync-snapshot-statement:  <the statement bytes, base64url>
 *
 * Ed25519 reads its message twice and Node signs one buffer, so signing a million-path body (~150 MB)
 * meant holding it whole; a hash is taken as the body streams to disk, and the primary serves the file.
 * The verifier checks the statement's signature, then the body's length and sha256, then (once it has
 * parsed the body) that its seq and time are the statement's. The statement's `kind` keeps it apart from
 * every other signed document. A body without a statement is the older form: its signature covers the body.
 */
export const snapshotStatementSchema = z.object({
  kind: z.literal('snapshot-statement'),
  seq: z.number().int().nonnegative(),
  time: z.number().int().nonnegative(),
  length: z.number().int().nonnegative(),
  sha256: z.string().refine(isSha256Hex, 'must be a lowercase sha256 hex digest'),
});
export type SnapshotStatement = z.infer<typeof snapshotStatementSchema>;

/** A statement's header is a few hundred bytes; anything longer is refused unread. */
const MAX_STATEMENT_HEADER_CHARS = 1024;

export function encodeSnapshotStatement(statement: Omit<SnapshotStatement, 'kind'>): Buffer {
  const { seq, time, length, sha256 } = statement;
  return Buffer.from(JSON.stringify({ kind: 'snapshot-statement', seq, time, length, sha256 }));
}

/** The statement's bytes and their signature: the header values a snapshot is served with. */
export function signSnapshotStatement(
  key: SigningKey,
  statement: Omit<SnapshotStatement, 'kind'>,
): { statement: string; signature: string } {
  const bytes = encodeSnapshotStatement(statement);
  return { statement: bytes.toString('base64url'), signature: signBody(key, bytes) };
}

/**
 * Verifies a snapshot body against its signature: through the statement when there is one (returned, for
 * checkSnapshotHead), else over the body (the older form; undefined). Throws METASYNC_ERR_SIGNATURE_INVALID
 * or METASYNC_ERR_SIGNATURE_UNKNOWN_KEY.
 */
export function verifySnapshotBody(
  body: Uint8Array,
  signed: { signature: string | undefined; statement: string | undefined },
  options: VerifyOptions,
): SnapshotStatement | undefined {
  if (signed.statement === undefined) {
    verifyBody(body, signed.signature, options);
    return undefined;
  }
  const invalid = (why: string) => metasyncError('METASYNC_ERR_SIGNATURE_INVALID', `${options.what} ${why}`, { what: options.what });
  if (signed.statement.length > MAX_STATEMENT_HEADER_CHARS || !/^[A-Za-z0-9_-]+$/.test(signed.statement))
    throw invalid('has a malformed statement header');
  const bytes = Buffer.from(signed.statement, 'base64url');
  verifyBody(bytes, signed.signature, { ...options, what: `${options.what} statement` });
  let statement: SnapshotStatement;
  try {
    statement = snapshotStatementSchema.parse(JSON.parse(bytes.toString('utf8')));
  } catch {
    throw invalid('has a signed statement that is not a snapshot statement');
  }
  if (body.byteLength !== statement.length) throw invalid(`is ${body.byteLength} bytes, its signed statement says ${statement.length}`);
  if (createHash('sha256').update(body).digest('hex') !== statement.sha256) throw invalid('does not hash to its signed statement');
  return statement;
}

/** The parsed snapshot is the one its statement names (a body of another seq under a valid statement is refused). */
export function checkSnapshotHead(head: { seq: number; time: number }, statement: SnapshotStatement | undefined, what: string): void {
  if (statement === undefined || (head.seq === statement.seq && head.time === statement.time)) return;
  throw metasyncError(
    'METASYNC_ERR_SIGNATURE_INVALID',
    `${what} is seq ${head.seq} at ${head.time}, its signed statement names seq ${statement.seq} at ${statement.time}`,
    { what, seq: head.seq, statementSeq: statement.seq },
  );
}
