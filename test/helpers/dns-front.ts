import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A client-side view of DNS for Composer: Composer cannot be pointed at a test
 * DNS server, so this loopback front re-resolves the service name (with the
 * client's subnet) every `refreshMs`, as a resolver honouring a 1 s TTL would,
 * and sends each request to one of the answered addresses, round-robin, via
 * the address -> URL map of the launched mirrors. It never retries: a request
 * that lands on a dead or draining address fails, as it would for a client.
 */
export interface DnsFront {
  url: string;
  stats: { requests: number; failures: number; failureSamples: string[]; byAddress: Record<string, number>; minAnswers: number };
  close(): Promise<void>;
}

export async function startDnsFront(options: {
  resolve: () => Promise<string[]>;
  /** Address -> mirror base URL; entries are remembered once seen, so a stale answer still reaches the old server. */
  addresses: () => Record<string, string>;
  refreshMs: number;
}): Promise<DnsFront> {
  const known = new Map<string, string>();
  let answers: string[] = [];
  let next = 0;
  const stats: DnsFront['stats'] = { requests: 0, failures: 0, failureSamples: [], byAddress: {}, minAnswers: Number.POSITIVE_INFINITY };
  const fail = (res: ServerResponse, why: string): void => {
    stats.failures++;
    if (stats.failureSamples.length < 20) stats.failureSamples.push(why);
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(why);
  };
  const refresh = async (): Promise<void> => {
    for (const [address, url] of Object.entries(options.addresses())) known.set(address, url);
    answers = await options.resolve();
    stats.minAnswers = Math.min(stats.minAnswers, answers.length);
  };
  await refresh();
  let stopped = false;
  const loop = (async () => {
    for (let round = 0; !stopped && round < 100_000; round++) {
      await new Promise((resolve) => setTimeout(resolve, options.refreshMs));
      if (!stopped) await refresh().catch(() => undefined);
    }
  })();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    stats.requests++;
    const current = answers;
    if (current.length === 0) return fail(res, `no DNS answer for ${req.url}`);
    const address = current[next++ % current.length]!;
    const base = known.get(address);
    if (base === undefined) return fail(res, `answer ${address} is no launched mirror`);
    stats.byAddress[address] = (stats.byAddress[address] ?? 0) + 1;
    const headers: Record<string, string> = {};
    // fetch() negotiates and decodes the content coding itself, so no Accept-Encoding or Content-Encoding is passed on.
    for (const name of ['accept', 'if-modified-since', 'if-none-match', 'user-agent']) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    try {
      const upstream = await fetch(`${base}${req.url ?? '/'}`, { headers, signal: AbortSignal.timeout(10_000) });
      const body = Buffer.from(await upstream.arrayBuffer());
      if (upstream.status >= 500) return fail(res, `${address} answered ${upstream.status} for ${req.url}`);
      const out: Record<string, string> = { 'content-length': String(body.length) };
      for (const name of ['content-type', 'last-modified', 'etag', 'cache-control']) {
        const value = upstream.headers.get(name);
        if (value !== null) out[name] = value;
      }
      res.writeHead(upstream.status, out);
      res.end(body);
    } catch (err) {
      fail(res, `${address} (${base}) failed for ${req.url}: ${(err as Error).message}`);
    }
  };
  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stats,
    async close() {
      stopped = true;
      await loop;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
