/**
 * An EC2 Query-API (2016-11-15) fake on loopback, good enough for the real
 * @aws-sdk/client-ec2 with an endpoint override and dummy credentials: the
 * aws launcher's RunInstances, DescribeInstances, TerminateInstances and
 * CreateTags. Test code only: it lives under test/ so it never ships in dist/.
 *
 * Rules it keeps like EC2: ClientToken idempotency (same token and parameters
 * -> the same reservation in its current state, also after termination; other
 * parameters -> IdempotentParameterMismatch), tags set atomically by
 * TagSpecifications, the region taken from the request's SigV4 scope,
 * terminated instances still described, InvalidInstanceID.NotFound, the
 * 16 KB user-data limit, and optionally DescribeInstances' eventual
 * consistency (a new instance missing from filtered answers for a while).
 * Time moves with polls: each DescribeInstances in a region is a tick for
 * its instances, which leave pending or shutting-down after N ticks, so tests
 * need no real waiting.
 *
 * Crash points: `onServed` runs after an action took effect and before its
 * answer is written; it may kill the client process (a real crash at that
 * step) or answer 'drop' to reset the connection (the client never hears
 * back). `inject` fails requests before they take effect, in EC2's error shape.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseQuery, str } from './query.js';
import { createStore, FakeEc2Error, type FakeInstance } from './store.js';
import { document, errorDocument } from './xml.js';

export type { FakeInstance } from './store.js';

export interface Ec2FakeInjection {
  /** e.g. `RunInstances`, or `*` for any action. */
  action: string;
  /** e.g. `RequestLimitExceeded`, `UnauthorizedOperation`, `InternalError`. */
  code: string;
  status?: number;
  times?: number;
}

export interface ServedCall {
  action: string;
  /** 0-based position among all calls served. */
  index: number;
  region: string;
}

export interface Ec2Fake {
  url: string;
  /** Every action served (after injection), in order; injected failures as `Action!Code`. */
  calls: string[];
  inject(injection: Ec2FakeInjection): void;
  /** Runs after an action took effect, before its answer; 'drop' resets the connection instead of answering. */
  onServed(hook: ((call: ServedCall) => 'respond' | 'drop' | Promise<'respond' | 'drop'>) | undefined): void;
  instances(): FakeInstance[];
  /** Instances not terminated or shutting down. */
  liveInstances(): FakeInstance[];
  close(): Promise<void>;
}

export interface Ec2FakeOptions {
  runningAfterPolls?: number;
  terminatedAfterPolls?: number;
  invisibleToFiltersFor?: number;
  failingImages?: Record<string, { code: string; message: string }>;
  instanceProfiles?: string[];
}

const REGION_IN_SCOPE = /Credential=[^/]+\/\d{8}\/([a-z0-9-]+)\/ec2\/aws4_request/;

export async function startEc2Fake(options: Ec2FakeOptions = {}): Promise<Ec2Fake> {
  const store = createStore({
    runningAfterPolls: options.runningAfterPolls ?? 2,
    terminatedAfterPolls: options.terminatedAfterPolls ?? 2,
    invisibleToFiltersFor: options.invisibleToFiltersFor ?? 0,
    failingImages: new Map(Object.entries(options.failingImages ?? {})),
    instanceProfiles: options.instanceProfiles === undefined ? undefined : new Set(options.instanceProfiles),
  });
  const calls: string[] = [];
  const injections: Ec2FakeInjection[] = [];
  let hook: ((call: ServedCall) => 'respond' | 'drop' | Promise<'respond' | 'drop'>) | undefined;

  const actions: Record<string, (region: string, q: ReturnType<typeof parseQuery>) => Record<string, unknown>> = {
    RunInstances: (region, q) => {
      const instance = store.runInstances(region, q);
      return {
        reservationId: instance.reservationId,
        ownerId: '123456789012',
        groupSet: [],
        instancesSet: [store.toXmlShape(instance)],
      };
    },
    DescribeInstances: (region, q) => {
      const found = store.describeInstances(region, q);
      const reservations = new Map<string, FakeInstance[]>();
      for (const instance of found)
        reservations.set(instance.reservationId, [...(reservations.get(instance.reservationId) ?? []), instance]);
      return {
        reservationSet: [...reservations].map(([reservationId, members]) => ({
          reservationId,
          ownerId: '123456789012',
          groupSet: [],
          instancesSet: members.map(store.toXmlShape),
        })),
      };
    },
    TerminateInstances: (region, q) => ({
      instancesSet: store.terminateInstances(region, q).map(({ instance, previous }) => ({
        instanceId: instance.id,
        currentState: { code: store.stateCode(instance.state), name: instance.state },
        previousState: { code: store.stateCode(previous), name: previous },
      })),
    }),
    CreateTags: (region, q) => {
      store.createTags(region, q);
      return { return: true };
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, body: string): Promise<void> => {
    const requestId = randomUUID();
    const send = (status: number, xml: string): void => {
      res.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': requestId }).end(xml);
    };
    const query = parseQuery(body);
    const action = str(query.Action) ?? '';
    const region = REGION_IN_SCOPE.exec(req.headers.authorization ?? '')?.[1];
    const run = actions[action];
    if (req.method !== 'POST' || run === undefined || region === undefined) {
      send(
        400,
        errorDocument('InvalidAction', `the fake does not implement ${req.method} ${action} (region ${region ?? 'unsigned'})`, requestId),
      );
      return;
    }
    const injection = injections.find((i) => i.action === action || i.action === '*');
    if (injection !== undefined) {
      injection.times = (injection.times ?? 1) - 1;
      if (injection.times <= 0) injections.splice(injections.indexOf(injection), 1);
      calls.push(`${action}!${injection.code}`);
      send(injection.status ?? 400, errorDocument(injection.code, `injected ${injection.code}`, requestId));
      return;
    }
    let xml: string;
    try {
      xml = document(action, requestId, run(region, query));
    } catch (err) {
      if (!(err instanceof FakeEc2Error)) throw err;
      calls.push(`${action}!${err.code}`);
      send(err.status, errorDocument(err.code, err.message, requestId));
      return;
    }
    const index = calls.length;
    calls.push(action);
    if (hook !== undefined && (await hook({ action, index, region })) === 'drop') {
      req.socket.destroy();
      return;
    }
    send(200, xml);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((err: unknown) => {
        if (res.headersSent || res.destroyed) return;
        res
          .writeHead(500, { 'content-type': 'text/xml' })
          .end(errorDocument('InternalError', err instanceof Error ? err.message : String(err), 'fake'));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    inject: (injection) => injections.push({ ...injection }),
    onServed: (next) => {
      hook = next;
    },
    instances: () => [...store.instances.values()],
    liveInstances: () => [...store.instances.values()].filter((i) => i.state !== 'terminated' && i.state !== 'shutting-down'),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err === undefined ? resolve() : reject(err)));
      }),
  };
}

/** An EC2 SDK client config pointed at the fake: dummy credentials, no SDK-level retries (each call is one request). */
export function fakeEc2ClientConfig(fake: Ec2Fake, region: string) {
  return {
    endpoint: fake.url,
    region,
    credentials: { accessKeyId: 'AKIDFAKE', secretAccessKey: 'fake-secret' },
    maxAttempts: 1,
  };
}
