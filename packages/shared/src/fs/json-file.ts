import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { hasErrno, metasyncError } from '../errors.js';

/**
 * Reads a JSON state or config file the process owns (key sets, pinned keys):
 * undefined when it does not exist yet; METASYNC_ERR_CONFIG_INVALID naming the
 * file when it is not JSON or not of the schema's shape, so an operator who
 * edited it by hand is told which file and why rather than getting a crash.
 */
export async function readJsonFile<T>(path: string, schema: z.ZodType<T>, what: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `${what} ${path} is not JSON`, { path }, err);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `${what} ${path} is malformed: ${parsed.error.message.slice(0, 300)}`, { path });
  return parsed.data;
}
