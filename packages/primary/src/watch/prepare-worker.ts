/** A prepare thread (prepare-pool.ts): prepares one source file per task, with the settings the pool was made with. */
import { move, transferableSymbol, valueSymbol, workerData } from 'piscina';
import { prepareSourceFile, type PrepareSettings } from './prepare.js';

const settings = workerData as PrepareSettings;

export default async function prepare(relPath: string): Promise<unknown> {
  const prepared = await prepareSourceFile(settings, relPath);
  if (prepared.kind !== 'file') return prepared;
  // The file's bytes (read into a buffer of their own, paths.ts) move to the main thread instead of being
  // copied; a gzip variant or rewritten content may share a pooled buffer with others, so those are copied.
  return move({ [transferableSymbol]: [prepared.file.bytes.buffer], [valueSymbol]: prepared } as never);
}
