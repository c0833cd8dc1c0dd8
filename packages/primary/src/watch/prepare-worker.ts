/** A prepare thread (prepare-pool.ts): prepares one source file per task, with the settings the pool was made with. */
import { workerData } from 'piscina';
import { prepareSourceFile, type PrepareSettings, type PreparedRead } from './prepare.js';

const settings = workerData as PrepareSettings;

export default function prepare(relPath: string): Promise<PreparedRead> {
  return prepareSourceFile(settings, relPath);
}
