import { request as httpRequest, type ClientRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HEADERS, SYNC_ROUTES, headEventSchema, mirrorsResponseSchema } from '@metasync/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/helpers/wait-for.js';
import { publish, startTestPrimary, type TestPrimary } from './primary-fixture.js';

let primary: TestPrimary | undefined;
const requests: ClientRequest[] = [];
afterEach(async () => {
  for (const req of requests.splice(0)) req.destroy();
  await primary?.close();
  primary = undefined;
});

interface EventStream {
  events: { event: string; data: string; atMs: number }[];
  comments: number;
  ended: boolean;
}

/** Opens the SSE stream on a real socket and parses events as bytes arrive. */
function openEvents(port: number, path: string, headers: Record<string, string> = {}): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const stream: EventStream = { events: [], comments: 0, ended: false };
    const req = httpRequest({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.startsWith(':')) stream.comments++;
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event !== undefined && data !== undefined) stream.events.push({ event, data, atMs: performance.now() });
        }
      });
      res.on('end', () => {
        stream.ended = true;
      });
      resolve(stream);
    });
    req.on('error', reject);
    req.end();
    requests.push(req);
  });
}

async function listen(p: TestPrimary): Promise<number> {
  await p.app.listen({ host: '127.0.0.1', port: 0 });
  return (p.app.server.address() as AddressInfo).port;
}

describe('events stream (SSE)', () => {
  it('sends the head at once on connect and announces a submit within 50 ms of its commit', async () => {
    primary = await startTestPrimary();
    await publish(primary, 'p2/acme/a.json', '1');
    const port = await listen(primary);
    const { secret } = await primary.mirrorCredentials.issue('m1');
    const stream = await openEvents(port, `${SYNC_ROUTES.events}?mirror=m1`, { authorization: `Bearer ${secret}` });
    await waitFor(() => stream.events.length === 1, { timeoutMs: 2_000, what: 'initial head event' });
    expect(headEventSchema.parse(JSON.parse(stream.events[0]!.data))).toMatchObject({ seq: 1 });
    // From the publish's return (its commit, fsyncs included, is not what this measures; under load they alone took 100+ ms).
    const { seq } = await publish(primary, 'p2/acme/b.json', '2');
    const committedMs = performance.now();
    await waitFor(() => stream.events.length === 2, { timeoutMs: 2_000, what: 'head event for the submit' });
    const event = stream.events[1]!;
    expect(event.event).toBe('head');
    expect(JSON.parse(event.data)).toEqual({ seq, time: primary.core.publisher.headTime() });
    expect(event.atMs - committedMs).toBeLessThan(50);
  });

  it('announces every commit to many clients and counts named mirrors as connected', async () => {
    primary = await startTestPrimary();
    const port = await listen(primary);
    const secrets = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => (await primary!.mirrorCredentials.issue(`mirror-${i}`)).secret),
    );
    const streams = await Promise.all(
      secrets.map((secret, i) =>
        openEvents(port, SYNC_ROUTES.events, { [HEADERS.mirrorId]: `mirror-${i}`, authorization: `Bearer ${secret}` }),
      ),
    );
    await waitFor(() => streams.every((s) => s.events.length === 1), { timeoutMs: 5_000, what: 'all initial events' });
    for (let i = 0; i < 3; i++) await publish(primary, `p2/acme/p${i}.json`, String(i));
    await waitFor(() => streams.every((s) => s.events.length === 4), { timeoutMs: 5_000, what: 'three announcements on every stream' });
    expect(streams.every((s) => s.events.map((e) => JSON.parse(e.data).seq).join() === '0,1,2,3')).toBe(true);
    const mirrors = mirrorsResponseSchema.parse((await primary.app.inject({ url: SYNC_ROUTES.mirrors })).json());
    expect(mirrors.mirrors).toHaveLength(50);
    expect(mirrors.mirrors.every((m) => m.connected)).toBe(true);
    const metrics = (await primary.app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/^metasync_connected_mirrors 50$/m);
  });

  it('sends heartbeat comments while idle and ends streams on shutdown', async () => {
    primary = await startTestPrimary({ heartbeatMs: 20 });
    const port = await listen(primary);
    const stream = await openEvents(port, SYNC_ROUTES.events);
    await waitFor(() => stream.comments >= 2, { timeoutMs: 2_000, what: 'two heartbeats' });
    await primary.close();
    primary = undefined;
    await waitFor(() => stream.ended, { timeoutMs: 2_000, what: 'stream end on shutdown' });
  });
});
