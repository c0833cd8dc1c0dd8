/**
 * The mirror's side of archive pins (shared protocol/dists.ts): read the pin
 * of an archive from the generation it serves (signed data, like any path),
 * and report the first bytes it fetched to the primary, which answers with
 * the pin in force: ours, or the one another mirror set first.
 */
import {
  DIST_PINS_ROUTE,
  distPinKey,
  distPinsDocumentSchema,
  distPinsPathFor,
  isMetasyncError,
  metasyncError,
  type DistKey,
  type DistPin,
  type DistPinAnswer,
  type DistPinReport,
} from '@metasync/shared';
import type { ObjectStore } from '@metasync/store';
import type { IndexView } from '../index/index-state.js';
import type { PrimaryClient } from '../sync/primary-client.js';

/** The pin of `key` in the index's generation, or undefined (no pins document, or no pin of that archive in it). */
export async function readPin(options: { index: IndexView; store: ObjectStore; key: DistKey }): Promise<DistPin | undefined> {
  const entry = options.index.lookup(distPinsPathFor(options.key.package));
  if (entry === undefined) return undefined;
  let document: unknown;
  try {
    document = JSON.parse((await options.store.read(entry.sha256)).toString('utf8'));
  } catch {
    return undefined;
  }
  const parsed = distPinsDocumentSchema.safeParse(document);
  if (!parsed.success || parsed.data.package !== options.key.package) return undefined;
  return parsed.data.pins[distPinKey(options.key)];
}

/** Reports fetched bytes; resolves with the pin in force. METASYNC_ERR_DIST_UNPINNED when the primary cannot say. */
export async function reportPin(client: Pick<PrimaryClient, 'postAsMirror'>, report: DistPinReport): Promise<DistPinAnswer> {
  const where = `${report.package}/${report.reference}.${report.type}`;
  let response;
  try {
    response = await client.postAsMirror(DIST_PINS_ROUTE, report);
  } catch (err) {
    if (!isMetasyncError(err)) throw err;
    throw metasyncError('METASYNC_ERR_DIST_UNPINNED', `pin of ${where} not recorded: ${err.message}`, { package: report.package }, err);
  }
  if (response.status !== 200) {
    throw metasyncError(
      'METASYNC_ERR_DIST_UNPINNED',
      `pin of ${where} answered HTTP ${response.status}: ${response.body.toString('utf8').slice(0, 200)}`,
      {
        package: report.package,
        status: response.status,
      },
    );
  }
  const answer = JSON.parse(response.body.toString('utf8')) as DistPinAnswer;
  if (typeof answer.pin?.sha256 !== 'string') {
    throw metasyncError('METASYNC_ERR_DIST_UNPINNED', `pin of ${where}: the primary's answer names no sha256`, { package: report.package });
  }
  return answer;
}
