/**
 * A Route53 REST-XML (2013-04-01) fake on loopback, good enough for the real
 * @aws-sdk/client-route-53 with an endpoint override and dummy credentials.
 * Test code only: it lives under test/ so it never ships in dist/.
 *
 * Rules it enforces like Route53: all-or-nothing change batches, exact-match
 * DELETE, one latency record per region per name and type, alias targets that
 * exist, health checks referenced by records must exist, CallerReference reuse
 * (same config -> the existing check; other config or a deleted check ->
 * HealthCheckAlreadyExists), changes PENDING then INSYNC after N GetChange polls.
 * It does NOT stop you deleting a check a record still uses (neither does
 * Route53); `report()` shows such dangling references instead.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  absolute,
  applyBatch,
  canonical,
  FakeRoute53Error,
  newChangeId,
  recordOrderKey,
  type FakeChange,
  type FakeHealthCheck,
  type FakeZone,
} from './store.js';
import { list, obj, recordFromXml, recordToXml, text } from './records-xml.js';
import { document, errorDocument, parseRequest } from './xml.js';

export interface FakeInjection {
  /** e.g. `ChangeResourceRecordSets`, `CreateHealthCheck`, or `*` for any call. */
  action: string;
  /** e.g. `Throttling`, `PriorRequestNotComplete`, `InvalidChangeBatch`. */
  code: string;
  status?: number;
  message?: string;
  /** How many matching calls fail (default 1). */
  times?: number;
}

export interface FakeReport {
  /** Records whose HealthCheckId names a check that does not exist. */
  recordsWithMissingCheck: string[];
  /** Live checks no record references. */
  unreferencedChecks: string[];
}

export interface Route53Fake {
  url: string;
  zoneIds: string[];
  /** Every action served (after injection), in order. */
  calls: string[];
  inject(injection: FakeInjection): void;
  zone(id: string): FakeZone;
  healthChecks(): FakeHealthCheck[];
  tags(resourceId: string): Record<string, string>;
  report(): FakeReport;
  close(): Promise<void>;
}

export interface Route53FakeOptions {
  zones: { name: string }[];
  /** GetChange answers PENDING this many times, then INSYNC. */
  insyncAfterPolls?: number;
  /** ...and not before this long after the change (ms, default 0). */
  insyncAfterMs?: number;
}

export async function startRoute53Fake(options: Route53FakeOptions): Promise<Route53Fake> {
  const insyncAfterPolls = options.insyncAfterPolls ?? 2;
  const insyncAfterMs = options.insyncAfterMs ?? 0;
  const zones = new Map<string, FakeZone>();
  for (const zone of options.zones) {
    const id = `Z${randomUUID().replace(/-/g, '').slice(0, 12).toUpperCase()}`;
    zones.set(id, { id, name: absolute(zone.name), records: [] });
  }
  const checks = new Map<string, FakeHealthCheck>();
  /** Every CallerReference ever used, live or deleted. */
  const references = new Map<string, { id: string; config: string }>();
  const tagsById = new Map<string, Map<string, string>>();
  const changes = new Map<string, { polls: number; submittedAt: string; submittedMs: number; comment?: string }>();
  const injections: FakeInjection[] = [];
  const calls: string[] = [];

  const zoneOf = (id: string): FakeZone => {
    const zone = zones.get(id);
    if (zone === undefined) throw new FakeRoute53Error('NoSuchHostedZone', 404, `No hosted zone found with ID: ${id}`);
    return zone;
  };
  const checkOf = (id: string): FakeHealthCheck => {
    const check = checks.get(id);
    if (check === undefined) throw new FakeRoute53Error('NoSuchHealthCheck', 404, `A health check with id ${id} does not exist.`);
    return check;
  };
  const changeInfo = (id: string): Record<string, unknown> => {
    const change = changes.get(id)!;
    const insync = change.polls >= insyncAfterPolls && Date.now() - change.submittedMs >= insyncAfterMs;
    return { Id: `/change/${id}`, Status: insync ? 'INSYNC' : 'PENDING', SubmittedAt: change.submittedAt, Comment: change.comment };
  };

  type Handler = (
    match: RegExpExecArray,
    query: URLSearchParams,
    body: string,
  ) => { status?: number; root: string; body: Record<string, unknown>; headers?: Record<string, string> };
  const routes: { method: string; pattern: RegExp; action: string; handle: Handler }[] = [
    {
      method: 'POST',
      pattern: /^\/2013-04-01\/hostedzone\/([^/]+)\/rrset\/?$/,
      action: 'ChangeResourceRecordSets',
      handle: (m, _q, body) => {
        const zone = zoneOf(m[1]!);
        const batch = obj(parseRequest(body, 'ChangeResourceRecordSetsRequest').ChangeBatch);
        const parsed: FakeChange[] = list(obj(batch?.Changes)?.Change).map((c) => ({
          Action: (text(c.Action) ?? '') as FakeChange['Action'],
          ResourceRecordSet: recordFromXml(obj(c.ResourceRecordSet) ?? {}),
        }));
        if (parsed.length === 0) throw new FakeRoute53Error('InvalidInput', 400, 'ChangeBatch must hold at least one Change');
        zone.records = applyBatch(zone, parsed, (id) => checks.has(id));
        const id = newChangeId();
        const comment = text(batch?.Comment);
        changes.set(id, {
          polls: 0,
          submittedAt: new Date().toISOString(),
          submittedMs: Date.now(),
          ...(comment === undefined ? {} : { comment }),
        });
        return { root: 'ChangeResourceRecordSetsResponse', body: { ChangeInfo: changeInfo(id) } };
      },
    },
    {
      method: 'GET',
      pattern: /^\/2013-04-01\/hostedzone\/([^/]+)\/rrset\/?$/,
      action: 'ListResourceRecordSets',
      handle: (m, q) => {
        const zone = zoneOf(m[1]!);
        const maxItems = Math.min(300, Number(q.get('maxitems') ?? '300'));
        const sorted = [...zone.records].sort((a, b) =>
          recordOrderKey(a.Name, a.Type, a.SetIdentifier) < recordOrderKey(b.Name, b.Type, b.SetIdentifier) ? -1 : 1,
        );
        const start = q.get('name');
        const from = start === null ? '' : recordOrderKey(start, q.get('type') ?? '', q.get('identifier') ?? '');
        const rest = sorted.filter((set) => recordOrderKey(set.Name, set.Type, set.SetIdentifier) >= from);
        const page = rest.slice(0, maxItems);
        const next = rest[maxItems];
        return {
          root: 'ListResourceRecordSetsResponse',
          body: {
            ResourceRecordSets: { ResourceRecordSet: page.map(recordToXml) },
            IsTruncated: next !== undefined,
            NextRecordName: next?.Name,
            NextRecordType: next?.Type,
            NextRecordIdentifier: next?.SetIdentifier,
            MaxItems: maxItems,
          },
        };
      },
    },
    {
      method: 'GET',
      pattern: /^\/2013-04-01\/change\/([^/]+)$/,
      action: 'GetChange',
      handle: (m) => {
        const change = changes.get(m[1]!);
        if (change === undefined)
          throw new FakeRoute53Error('NoSuchChange', 404, `A change with the specified change ID does not exist: ${m[1]}`);
        change.polls += 1;
        return { root: 'GetChangeResponse', body: { ChangeInfo: changeInfo(m[1]!) } };
      },
    },
    {
      method: 'POST',
      pattern: /^\/2013-04-01\/healthcheck\/?$/,
      action: 'CreateHealthCheck',
      handle: (_m, _q, body) => {
        const request = parseRequest(body, 'CreateHealthCheckRequest');
        const ref = text(request.CallerReference) ?? '';
        const config = obj(request.HealthCheckConfig) ?? {};
        if (ref === '' || ref.length > 64)
          throw new FakeRoute53Error('InvalidInput', 400, `CallerReference must be 1..64 characters, got ${JSON.stringify(ref)}`);
        const used = references.get(ref);
        if (used !== undefined) {
          const live = checks.get(used.id);
          if (live === undefined || used.config !== canonical(config)) {
            throw new FakeRoute53Error(
              'HealthCheckAlreadyExists',
              409,
              `A health check with CallerReference ${ref} already exists${live === undefined ? ' (deleted)' : ' with a different configuration'}.`,
            );
          }
          return {
            status: 201,
            root: 'CreateHealthCheckResponse',
            body: { HealthCheck: live },
            headers: { location: `https://route53.amazonaws.com/2013-04-01/healthcheck/${live.Id}` },
          };
        }
        const check: FakeHealthCheck = { Id: randomUUID(), CallerReference: ref, HealthCheckConfig: config, HealthCheckVersion: 1 };
        checks.set(check.Id, check);
        references.set(ref, { id: check.Id, config: canonical(config) });
        return {
          status: 201,
          root: 'CreateHealthCheckResponse',
          body: { HealthCheck: check },
          headers: { location: `https://route53.amazonaws.com/2013-04-01/healthcheck/${check.Id}` },
        };
      },
    },
    {
      method: 'GET',
      pattern: /^\/2013-04-01\/healthcheck\/?$/,
      action: 'ListHealthChecks',
      handle: (_m, q) => {
        const maxItems = Math.min(1000, Number(q.get('maxitems') ?? '100'));
        const all = [...checks.values()];
        const marker = q.get('marker');
        const startIndex =
          marker === null
            ? 0
            : Math.max(
                0,
                all.findIndex((c) => c.Id === marker),
              );
        const page = all.slice(startIndex, startIndex + maxItems);
        const next = all[startIndex + maxItems];
        return {
          root: 'ListHealthChecksResponse',
          body: {
            HealthChecks: { HealthCheck: page },
            Marker: marker ?? '',
            IsTruncated: next !== undefined,
            NextMarker: next?.Id,
            MaxItems: maxItems,
          },
        };
      },
    },
    {
      method: 'GET',
      pattern: /^\/2013-04-01\/healthcheck\/([^/]+)$/,
      action: 'GetHealthCheck',
      handle: (m) => ({ root: 'GetHealthCheckResponse', body: { HealthCheck: checkOf(m[1]!) } }),
    },
    {
      method: 'DELETE',
      pattern: /^\/2013-04-01\/healthcheck\/([^/]+)$/,
      action: 'DeleteHealthCheck',
      handle: (m) => {
        checkOf(m[1]!);
        checks.delete(m[1]!);
        tagsById.delete(m[1]!);
        return { root: 'DeleteHealthCheckResponse', body: {} };
      },
    },
    {
      method: 'POST',
      pattern: /^\/2013-04-01\/tags\/healthcheck\/([^/]+)$/,
      action: 'ChangeTagsForResource',
      handle: (m, _q, body) => {
        checkOf(m[1]!);
        const request = parseRequest(body, 'ChangeTagsForResourceRequest');
        const tags = tagsById.get(m[1]!) ?? new Map<string, string>();
        for (const tag of list(obj(request.AddTags)?.Tag)) tags.set(text(tag.Key) ?? '', text(tag.Value) ?? '');
        const removeKeys = obj(request.RemoveTagKeys)?.Key;
        for (const key of Array.isArray(removeKeys) ? removeKeys : []) if (typeof key === 'string') tags.delete(key);
        if (tags.size > 50) throw new FakeRoute53Error('InvalidInput', 400, 'A resource can have at most 50 tags');
        tagsById.set(m[1]!, tags);
        return { root: 'ChangeTagsForResourceResponse', body: {} };
      },
    },
    {
      method: 'GET',
      pattern: /^\/2013-04-01\/tags\/healthcheck\/([^/]+)$/,
      action: 'ListTagsForResource',
      handle: (m) => {
        checkOf(m[1]!);
        const tags = [...(tagsById.get(m[1]!) ?? new Map<string, string>())].map(([Key, Value]) => ({ Key, Value }));
        return {
          root: 'ListTagsForResourceResponse',
          body: { ResourceTagSet: { ResourceType: 'healthcheck', ResourceId: m[1]!, Tags: { Tag: tags } } },
        };
      },
    },
  ];

  const handle = (req: IncomingMessage, res: ServerResponse, body: string): void => {
    const requestId = randomUUID();
    const send = (status: number, xml: string, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId, ...headers }).end(xml);
    };
    const url = new URL(req.url ?? '/', 'http://fake');
    const route = routes.find((r) => r.method === req.method && r.pattern.test(url.pathname));
    if (route === undefined) {
      send(404, errorDocument('UnknownOperation', `the fake does not implement ${req.method} ${url.pathname}`, requestId));
      return;
    }
    const injection = injections.find((i) => i.action === route.action || i.action === '*');
    if (injection !== undefined) {
      injection.times = (injection.times ?? 1) - 1;
      if (injection.times <= 0) injections.splice(injections.indexOf(injection), 1);
      calls.push(`${route.action}!${injection.code}`);
      send(injection.status ?? 400, errorDocument(injection.code, injection.message ?? `injected ${injection.code}`, requestId));
      return;
    }
    calls.push(route.action);
    try {
      const out = route.handle(route.pattern.exec(url.pathname)!, url.searchParams, body);
      send(out.status ?? 200, document(out.root, out.body), out.headers);
    } catch (err) {
      if (!(err instanceof FakeRoute53Error)) throw err;
      send(err.status, errorDocument(err.code, err.message, requestId));
    }
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      try {
        handle(req, res, Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        res
          .writeHead(500, { 'content-type': 'text/xml' })
          .end(errorDocument('InternalFailure', err instanceof Error ? err.message : String(err), 'fake'));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    zoneIds: [...zones.keys()],
    calls,
    inject: (injection) => injections.push({ ...injection }),
    zone: zoneOf,
    healthChecks: () => [...checks.values()],
    tags: (id) => Object.fromEntries(tagsById.get(id) ?? []),
    report: () => {
      const referenced = new Set<string>();
      const recordsWithMissingCheck: string[] = [];
      for (const zone of zones.values()) {
        for (const set of zone.records) {
          if (set.HealthCheckId === undefined) continue;
          referenced.add(set.HealthCheckId);
          if (!checks.has(set.HealthCheckId))
            recordsWithMissingCheck.push(`${set.Name} ${set.Type} ${set.SetIdentifier ?? ''} -> ${set.HealthCheckId}`);
        }
      }
      return { recordsWithMissingCheck, unreferencedChecks: [...checks.keys()].filter((id) => !referenced.has(id)) };
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err === undefined ? resolve() : reject(err)));
      }),
  };
}

/** A Route53 SDK client pointed at the fake, with dummy credentials and no SDK-level retries. */
export function fakeClientConfig(fake: Route53Fake): {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  maxAttempts: number;
} {
  return {
    endpoint: fake.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDFAKE', secretAccessKey: 'fake-secret' },
    maxAttempts: 1,
  };
}
