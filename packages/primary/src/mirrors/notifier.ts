import type { ServerResponse } from 'node:http';
import type { Logger } from '@metasync/shared/daemon';
import type { PrimaryPublisher } from '../publish/publisher.js';

/**
 * The push half of the sync protocol: Server-Sent Events on `GET /sync/v1/events`.
 *
 *   connect  -> "retry: 1000" + `head` event {seq,time} at once
 *   commit   -> `head` event to every client, written synchronously in the
 *               publisher's commit listener (before the submit resolves)
 *   idle     -> ": hb" comment every heartbeatMs (keeps proxies and NAT open)
 *
 * Headers go out immediately and every write is flushed (no compression, Nagle
 * off, `X-Accel-Buffering: no`), so an event costs one small TCP segment.
 * A client that stops reading is dropped once its buffer passes maxBufferedBytes.
 */
export interface Notifier {
  /** Takes over `res` (already hijacked from fastify) as an event stream. */
  attach(res: ServerResponse, mirrorId: string | undefined): void;
  connectedCount(): number;
  isConnected(mirrorId: string): boolean;
  /** Ends every stream (shutdown). */
  close(): void;
}

export interface NotifierOptions {
  publisher: PrimaryPublisher;
  heartbeatMs: number;
  log: Logger;
  maxBufferedBytes?: number;
  /** Called with the mirror id when a named mirror connects. */
  onMirrorConnect?: (mirrorId: string) => void;
}

interface Client {
  res: ServerResponse;
  mirrorId: string | undefined;
}

export function headEventText(seq: number, time: number): string {
  return `event: head\nid: ${seq}\ndata: ${JSON.stringify({ seq, time })}\n\n`;
}

export function createNotifier(options: NotifierOptions): Notifier {
  const { publisher, log } = options;
  const maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
  const clients = new Set<Client>();
  const connectedByMirror = new Map<string, number>();

  function drop(client: Client): void {
    if (!clients.delete(client)) return;
    if (client.mirrorId !== undefined) {
      const left = (connectedByMirror.get(client.mirrorId) ?? 1) - 1;
      if (left <= 0) connectedByMirror.delete(client.mirrorId);
      else connectedByMirror.set(client.mirrorId, left);
    }
    log.debug({ mirrorId: client.mirrorId, clients: clients.size }, 'events client left');
  }

  function send(client: Client, text: string): void {
    if (client.res.writableLength > maxBufferedBytes) {
      log.warn({ mirrorId: client.mirrorId, bufferedBytes: client.res.writableLength }, 'events client too slow, dropped');
      client.res.destroy();
      drop(client);
      return;
    }
    client.res.write(text);
  }

  function broadcast(text: string): void {
    for (const client of clients) send(client, text);
  }

  const unsubscribe = publisher.onCommit(({ generation }) => broadcast(headEventText(generation.seq, generation.time)));
  const heartbeat = setInterval(() => broadcast(': hb\n\n'), options.heartbeatMs);
  heartbeat.unref();

  return {
    attach(res, mirrorId) {
      const client: Client = { res, mirrorId };
      res.socket?.setNoDelay(true);
      res.socket?.setKeepAlive(true);
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      clients.add(client);
      if (mirrorId !== undefined) {
        connectedByMirror.set(mirrorId, (connectedByMirror.get(mirrorId) ?? 0) + 1);
        options.onMirrorConnect?.(mirrorId);
      }
      res.on('close', () => drop(client));
      res.write(`retry: 1000\n\n${headEventText(publisher.headSeq(), publisher.headTime())}`);
      log.debug({ mirrorId, clients: clients.size }, 'events client joined');
    },
    connectedCount: () => clients.size,
    isConnected: (mirrorId) => connectedByMirror.has(mirrorId),
    close() {
      unsubscribe();
      clearInterval(heartbeat);
      for (const client of [...clients]) {
        client.res.end();
        drop(client);
      }
    },
  };
}
