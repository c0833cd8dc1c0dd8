import { Client } from 'undici';
import { HEADERS, SYNC_ROUTES, headEventSchema, type HeadEvent } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import { primaryConnectOptions } from './primary-ca.js';

/**
 * Follows the primary's push stream (`GET /sync/v1/events`, SSE) over its own
 * long-lived connection, so it never holds a slot of the object pool. Events
 * are only hints (invariant 7): each `head` triggers a pull, and the caller's
 * poll covers lost ones. Reconnects with exponential backoff plus jitter.
 */
export interface EventStreamOptions {
  primaryUrl: string;
  mirrorId: string;
  /**
   * The mirror's enrollment credential. With it the stream names the mirror (the
   * primary then lists it as connected); without it the stream is anonymous, which
   * the primary allows: heads are public, only naming a mirror needs its credential.
   */
  credential?: string | undefined;
  connectTimeoutMs: number;
  /** --primary-ca (primary-ca.ts). */
  ca?: Buffer | undefined;
  /**
   * Longest silence on an open stream (the primary sends a heartbeat comment
   * every --heartbeat-ms) before it counts as dead and is reconnected: the far
   * end of a partition may be gone without its FIN ever arriving.
   */
  idleTimeoutMs?: number;
  logger: Logger;
  onHead(event: HeadEvent): void;
  /** Any bytes from the stream (comments included): the primary is alive. */
  onActivity(): void;
  /** After each (re)connect: pull once, the stream may have missed heads. */
  onConnected(): void;
}

export interface EventStream {
  stop(): Promise<void>;
}

const EVENT_BOUNDARY = /\r?\n\r?\n/;
/** Three of the primary's default 15 s heartbeats. */
const DEFAULT_IDLE_TIMEOUT_MS = 45_000;

export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling * (0.5 + random() * 0.5));
}

export function followEvents(options: EventStreamOptions): EventStream {
  const base = new URL(options.primaryUrl);
  const path = `${base.pathname.replace(/\/+$/, '')}${SYNC_ROUTES.events}`;
  let stopped = false;
  let client: Client | undefined;
  let abort: AbortController | undefined;
  let wake: (() => void) | undefined;

  async function connectOnce(): Promise<void> {
    client = new Client(base.origin, {
      connect: primaryConnectOptions(options.connectTimeoutMs, options.ca),
      headersTimeout: options.connectTimeoutMs,
      bodyTimeout: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    });
    abort = new AbortController();
    const response = await client.request({
      path,
      method: 'GET',
      headers:
        options.credential === undefined
          ? { accept: 'text/event-stream' }
          : { accept: 'text/event-stream', [HEADERS.mirrorId]: options.mirrorId, authorization: `Bearer ${options.credential}` },
      signal: abort.signal,
    });
    if (response.statusCode !== 200) {
      response.body.resume();
      throw new Error(`events stream answered HTTP ${response.statusCode}`);
    }
    options.onActivity();
    options.onConnected();
    let buffer = '';
    response.body.setEncoding('utf8');
    for await (const chunk of response.body) {
      options.onActivity();
      buffer += chunk as string;
      for (let match = EVENT_BOUNDARY.exec(buffer); match !== null; match = EVENT_BOUNDARY.exec(buffer)) {
        handleBlock(buffer.slice(0, match.index));
        buffer = buffer.slice(match.index + match[0].length);
      }
      if (buffer.length > 1024 * 1024) throw new Error('events stream sent an event over 1 MiB');
    }
  }

  function handleBlock(block: string): void {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if ((event !== 'head' && event !== 'message') || data.length === 0) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(data.join('\n'));
    } catch (err) {
      options.logger.warn({ err, event }, 'events stream sent malformed data');
      return;
    }
    const head = headEventSchema.safeParse(parsed);
    if (head.success) options.onHead(head.data);
  }

  async function loop(): Promise<void> {
    for (let attempt = 0; !stopped;) {
      const startedAt = Date.now();
      try {
        await connectOnce();
      } catch (err) {
        if (stopped) break;
        options.logger.debug({ err }, 'events stream failed');
      }
      await client?.destroy().catch((err: unknown) => options.logger.debug({ err }, 'events client close failed'));
      if (stopped) break;
      // A stream that stayed up a while resets the backoff.
      attempt = Date.now() - startedAt > 10_000 ? 0 : attempt + 1;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, backoffMs(attempt, 100, 1_000));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  const running = loop();
  return {
    async stop() {
      stopped = true;
      abort?.abort();
      wake?.();
      await running;
    },
  };
}
