import { packageKeyFromP2Path } from '@metasync/shared';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Journal } from '../journal/journal.js';

/**
 * Packagist-compatible change feed, `GET /metadata/changes.json?since=T`, so
 * existing Packagist mirror tooling can follow a metasync primary. T is in
 * 1/10000 s, as on packagist.org (MetadataController / WebController there):
 *
 *   200 {"actions":[{"type":"update"|"delete","package":"a/b"|"a/b~dev","time":<unix s>}],"timestamp":T'}
 *   200 {"actions":[{"type":"resync","package":"*","time":<unix s>}],"timestamp":T'}   since older than the journal
 *   400 {"error":"...","timestamp":<now T>}                                           since missing or invalid
 *
 * `since` is inclusive. T' is the head generation's commit time + 1 unit; the
 * publisher makes commit times strictly increasing (>= 1 ms apart), so every
 * later generation has a time >= T' and asking again with `since=T'` misses nothing.
 */
export interface PackagistAction {
  type: 'update' | 'delete' | 'resync';
  package: string;
  time: number;
}

const UNITS_PER_MS = 10;

export function packagistChangesRoutes(app: FastifyInstance, options: { journal: Journal; now: () => number }): void {
  const { journal, now } = options;
  app.get('/metadata/changes.json', (request: FastifyRequest<{ Querystring: Record<string, string | undefined> }>, reply) => {
    void reply.header('cache-control', 'no-store');
    const raw = request.query.since;
    const nowUnits = now() * UNITS_PER_MS;
    if (raw === undefined || !/^\d{1,17}$/.test(raw) || Number(raw) === 0) {
      return reply.code(400).send({
        error:
          'Invalid or missing "since" query parameter: store the timestamp of the point you started ' +
          'mirroring and send it to receive changes, e.g. /metadata/changes.json?since=' +
          nowUnits,
        timestamp: nowUnits,
      });
    }
    return reply.send(packagistChanges(journal, Number(raw), nowUnits));
  });
}

export function packagistChanges(journal: Journal, since: number, nowUnits: number): { actions: PackagistAction[]; timestamp: number } {
  const head = journal.headSeq();
  const timestamp = head === 0 ? nowUnits : journal.headTime() * UNITS_PER_MS + 1;
  const oldest = journal.oldestSeq();
  if (oldest > 0) {
    // Generations <= oldest are gone; their times are all before the first kept one.
    const firstKeptTime = journal.timeOf(oldest + 1) ?? journal.headTime();
    if (since < firstKeptTime * UNITS_PER_MS) {
      return { actions: [{ type: 'resync', package: '*', time: Math.floor(nowUnits / 10_000) }], timestamp };
    }
  }
  // The first generation at or after `since`, found by its time: only generations from there are unpacked.
  let after = head;
  while (after > oldest && (journal.timeOf(after) ?? 0) * UNITS_PER_MS >= since) after--;
  const actions = new Map<string, PackagistAction>();
  for (const generation of journal.generationsAfter(after)) {
    for (const entry of generation.entries) {
      const key = packageKeyFromP2Path(entry.path);
      if (key === undefined) continue;
      actions.delete(key);
      actions.set(key, { type: 'deleted' in entry ? 'delete' : 'update', package: key, time: Math.floor(generation.time / 1000) });
    }
  }
  return { actions: [...actions.values()], timestamp };
}
