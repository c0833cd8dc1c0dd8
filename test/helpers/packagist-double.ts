import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gzipSync } from 'node:zlib';

/**
 * A loopback stand-in for packagist.org, behaving as it is documented to
 * (packagist.org/apidoc, composer/mirror), with faults on command:
 *
 *   GET /packages.json                 absolute metadata-url and metadata-changes-url (as since 2025), no `list`
 *   GET /packages/list.json            {"packageNames": [...]} (names as given, invalid ones included)
 *   GET /repo/p2/<key>.json            gzip when asked, Last-Modified, If-Modified-Since -> 304
 *   GET /metadata/changes.json         no since: 400 {"error", "timestamp": now}; since older than a
 *                                      day (or forceResync()): resync; else the actions at or after since
 *
 * Timestamps are unix time x 10000; action times unix seconds.
 */
export type FileFault =
  /** 429 with Retry-After: seconds. */
  | { kind: '429'; retryAfterS: number }
  | { kind: '500' }
  /** Announces the full length, sends half, closes. */
  | { kind: 'truncate' }
  /** The previous bytes with the previous Last-Modified, as a lagging CDN node. */
  | { kind: 'stale' };

interface StoredFile {
  body: Buffer;
  modifiedMs: number;
  previous?: { body: Buffer; modifiedMs: number };
}

export interface PackagistDouble {
  url: string;
  /** Sets a p2 file (`vendor/name` or `vendor/name~dev`) and records an update action unless `silent`. */
  put(key: string, body: Buffer | object, options?: { silent?: boolean }): void;
  /** Removes a file and records a delete action unless `silent`. */
  remove(key: string, options?: { silent?: boolean }): void;
  /** The names /packages/list.json answers (may hold invalid ones). */
  setList(names: string[]): void;
  /** The next `count` answers for this file carry `fault`. */
  fault(key: string, fault: FileFault, count?: number): void;
  /** Added to the change feed's timestamps (negative: the feed goes back in time). */
  setClockOffsetMs(ms: number): void;
  /** The next change-feed answer is a resync (as when `since` is older than Packagist keeps). */
  forceResync(): void;
  /** Every answer waits this long first (a WAN round trip to packagist.org; default 0). */
  setDelayMs(ms: number): void;
  /** While down, every connection is destroyed on arrival. */
  setDown(down: boolean): void;
  /** Every request seen: path (with query), status answered, ms. */
  requests(): Array<{ path: string; status: number; atMs: number; ifModifiedSince: boolean }>;
  body(key: string): Buffer | undefined;
  close(): Promise<void>;
}

export async function startPackagistDouble(): Promise<PackagistDouble> {
  const files = new Map<string, StoredFile>();
  const actions: Array<{ type: 'update' | 'delete'; package: string; units: number }> = [];
  const faults = new Map<string, { fault: FileFault; count: number }>();
  const seen: Array<{ path: string; status: number; atMs: number; ifModifiedSince: boolean }> = [];
  const sockets = new Set<Socket>();
  let list: string[] = [];
  let clockOffsetMs = 0;
  const keepSinceMs = 24 * 3600 * 1000;
  let resyncNext = false;
  let down = false;
  let delayMs = 0;
  let lastUnits = 0;
  let base = '';

  // Strictly increasing, like Packagist's own clock-derived ids.
  const nowUnits = (): number => (lastUnits = Math.max(Date.now() * 10, lastUnits + 1));

  function send(req: IncomingMessage, res: ServerResponse, status: number, body: Buffer, headers: Record<string, string> = {}): void {
    const gzip = /\bgzip\b/.test(req.headers['accept-encoding'] ?? '') && status === 200;
    const payload = gzip ? gzipSync(body) : body;
    res.writeHead(status, { 'content-type': 'application/json', ...(gzip ? { 'content-encoding': 'gzip' } : {}), ...headers });
    res.end(payload);
  }

  function json(req: IncomingMessage, res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
    send(req, res, status, Buffer.from(JSON.stringify(value)), { 'cache-control': 'no-store', ...headers });
  }

  function answer(req: IncomingMessage, res: ServerResponse): number {
    const url = new URL(req.url ?? '/', base);
    if (url.pathname === '/packages.json') {
      json(req, res, 200, {
        packages: [],
        'metadata-url': `${base}/repo/p2/%package%.json`,
        'metadata-changes-url': `${base}/metadata/changes.json`,
        'providers-api': `${base}/providers/%package%.json`,
        search: `${base}/search.json?q=%query%&type=%type%`,
        'notify-batch': `${base}/downloads/`,
      });
      return 200;
    }
    if (url.pathname === '/packages/list.json') {
      json(req, res, 200, { packageNames: list });
      return 200;
    }
    if (url.pathname === '/metadata/changes.json') {
      const since = url.searchParams.get('since');
      const timestamp = nowUnits() + clockOffsetMs * 10;
      if (since === null || !/^\d+$/.test(since)) {
        json(req, res, 400, { error: 'Invalid or missing "since" query parameter, make sure you store the timestamp ...', timestamp });
        return 400;
      }
      if (resyncNext || Number(since) < (Date.now() - keepSinceMs) * 10) {
        resyncNext = false;
        json(req, res, 200, { actions: [{ type: 'resync', time: Math.floor(Date.now() / 1000), package: '*' }], timestamp });
        return 200;
      }
      const found = actions
        .filter((action) => action.units >= Number(since))
        .map((action) => ({ type: action.type, package: action.package, time: Math.floor(action.units / 10_000) }));
      json(req, res, 200, { actions: found, timestamp });
      return 200;
    }
    const match = /^\/repo\/p2\/(.+)\.json$/.exec(url.pathname);
    const key = match?.[1];
    const file = key === undefined ? undefined : files.get(key);
    if (key === undefined || file === undefined) {
      json(req, res, 404, { status: 'error', message: 'Package not found' });
      return 404;
    }
    const pendingFault = faults.get(key);
    if (pendingFault !== undefined) {
      if (--pendingFault.count <= 0) faults.delete(key);
      const { fault } = pendingFault;
      if (fault.kind === '429') {
        json(req, res, 429, { error: 'too many requests' }, { 'retry-after': String(fault.retryAfterS) });
        return 429;
      }
      if (fault.kind === '500') {
        json(req, res, 500, { error: 'internal' });
        return 500;
      }
      if (fault.kind === 'truncate') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(file.body.length) });
        res.write(file.body.subarray(0, Math.floor(file.body.length / 2)));
        res.socket?.destroy();
        return 200;
      }
      const old = file.previous ?? file;
      send(req, res, 200, old.body, { 'last-modified': new Date(old.modifiedMs).toUTCString() });
      return 200;
    }
    const since = req.headers['if-modified-since'];
    if (since !== undefined && Math.floor(file.modifiedMs / 1000) <= Math.floor(Date.parse(since) / 1000)) {
      res.writeHead(304, { 'last-modified': new Date(file.modifiedMs).toUTCString() }).end();
      return 304;
    }
    send(req, res, 200, file.body, { 'last-modified': new Date(file.modifiedMs).toUTCString() });
    return 200;
  }

  const server = createServer((req, res) => {
    if (down) {
      req.socket.destroy();
      return;
    }
    const respond = (): void => {
      const status = answer(req, res);
      seen.push({ path: req.url ?? '', status, atMs: Date.now(), ifModifiedSince: req.headers['if-modified-since'] !== undefined });
    };
    if (delayMs > 0) setTimeout(respond, delayMs);
    else respond();
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: base,
    put(key, body, options = {}) {
      const bytes = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
      const previous = files.get(key);
      const units = nowUnits();
      files.set(key, {
        body: bytes,
        modifiedMs: Math.floor(units / 10),
        ...(previous === undefined ? {} : { previous: { body: previous.body, modifiedMs: previous.modifiedMs } }),
      });
      if (options.silent !== true) actions.push({ type: 'update', package: key, units });
    },
    remove(key, options = {}) {
      files.delete(key);
      if (options.silent !== true) actions.push({ type: 'delete', package: key, units: nowUnits() });
    },
    setList(names) {
      list = [...names];
    },
    fault(key, fault, count = 1) {
      faults.set(key, { fault, count });
    },
    setClockOffsetMs(ms) {
      clockOffsetMs = ms;
    },
    forceResync() {
      resyncNext = true;
    },
    setDelayMs(ms) {
      delayMs = ms;
    },
    setDown(next) {
      down = next;
      if (next) for (const socket of sockets) socket.destroy();
    },
    requests: () => [...seen],
    body: (key) => files.get(key)?.body,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
