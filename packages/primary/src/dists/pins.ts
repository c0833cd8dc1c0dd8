/**
 * Dist archive pins, first report wins. A mirror that fetched an archive first
 * reports its sha256; the pin goes into `dist-pins/<vendor>/<name>.json`, an
 * ordinary path of the next generation: signed, journaled, snapshotted and
 * replicated like every other path, so every mirror has the same pins and they
 * survive restarts with nothing else to keep in sync (the journal is the
 * durable record; a separate pins file would be a second source of truth).
 * The path is reserved: neither daemon ever serves it as repository content.
 *
 * Reports for one package are applied one after another (a promise chain per
 * package), so two mirrors racing on the same archive cannot both win, and two
 * references of one package cannot overwrite each other's pins.
 */
import {
  distPinKey,
  distPinsDocumentSchema,
  distPinsPathFor,
  metasyncError,
  p2PathFor,
  type DistPin,
  type DistPinAnswer,
  type DistPinReport,
  type DistPinsDocument,
} from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import type { PrimaryPublisher } from '../publish/publisher.js';

export interface DistPins {
  /** Records `report` unless the archive is pinned already; answers the pin in force. */
  pin(report: DistPinReport): Promise<DistPinAnswer>;
}

export function createDistPins(options: {
  publisher: Pick<PrimaryPublisher, 'getEntry' | 'readObject' | 'submit' | 'manifestSeq'>;
  log: Logger;
  now?: () => number;
}): DistPins {
  const { publisher, log } = options;
  const now = options.now ?? Date.now;
  const chains = new Map<string, Promise<unknown>>();

  async function current(name: string): Promise<DistPinsDocument> {
    const entry = publisher.getEntry(distPinsPathFor(name));
    if (entry === undefined) return { package: name, pins: {} };
    const parsed = distPinsDocumentSchema.safeParse(JSON.parse((await publisher.readObject(entry.sha256)).toString('utf8')));
    // Only this file writes the document; one that does not parse would be lost pins, so stop rather than overwrite them.
    if (!parsed.success) throw new Error(`pins document ${distPinsPathFor(name)} does not parse: ${parsed.error.message}`);
    return parsed.data;
  }

  async function apply(report: DistPinReport): Promise<DistPinAnswer> {
    const name = report.package;
    if (publisher.getEntry(p2PathFor(name, false)) === undefined && publisher.getEntry(p2PathFor(name, true)) === undefined) {
      throw metasyncError('METASYNC_ERR_PACKAGE_NOT_FOUND', `no package ${name} in the repository to pin an archive of`, { package: name });
    }
    const document = await current(name);
    const key = distPinKey(report);
    const existing = document.pins[key];
    if (existing !== undefined) return { pin: existing, created: false, seq: publisher.manifestSeq() };
    const pin: DistPin = {
      sha256: report.sha256,
      size: report.size,
      time: now(),
      ...(report.source === undefined ? {} : { source: report.source }),
    };
    const next: DistPinsDocument = { package: name, pins: { ...document.pins, [key]: pin } };
    const { seq } = await publisher.submit([{ path: distPinsPathFor(name), content: Buffer.from(JSON.stringify(next)) }], 'pins');
    log.info({ package: name, archive: key, sha256: pin.sha256, size: pin.size, source: pin.source, seq }, 'dist archive pinned');
    return { pin, created: true, seq };
  }

  return {
    pin(report) {
      const previous = chains.get(report.package) ?? Promise.resolve();
      const next = previous.catch(() => undefined).then(() => apply(report));
      const settled = next.catch(() => undefined);
      chains.set(report.package, settled);
      void settled.then(() => {
        if (chains.get(report.package) === settled) chains.delete(report.package);
      });
      return next;
    },
  };
}
