/** A prepare thread (prepare-pool.ts): prepares one source file per task, with the settings the pool was made with. */
import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';
import { prepareSourceFile, type PrepareSettings, type PreparedRead } from './prepare.js';

const settings = workerData as PrepareSettings;

export default async function prepare(relPath: string): Promise<unknown> {
  const prepared = await prepareSourceFile(settings, relPath);
  if (prepared.kind !== 'file') return prepared;
  const { file, stored } = prepared;
  // The file's bytes were read into a buffer of their own (paths.ts); a gzip variant or rewritten content
  // usually views Node's 8 KiB pool, which a transfer would take away and a clone would copy whole: each is
  // copied into an exact buffer first. All of them then move to the main thread instead of being copied.
  const content = stored.content === file.bytes ? file.bytes : own(stored.content);
  const gzip = stored.gzip === undefined ? undefined : own(stored.gzip);
  const value: PreparedRead = { kind: 'file', file, stored: { ...stored, content, gzip } };
  const moved = [file.bytes, content, gzip].flatMap((bytes) => (bytes === undefined ? [] : [bytes.buffer]));
  return move({ [transferableSymbol]: [...new Set(moved)], [valueSymbol]: value } as never);
}

function own(bytes: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(copy);
  return copy;
}
