import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy that misbehaves on command, for putting between a
 * mirror and the primary. The mode is read on every chunk, so switching it
 * affects live keep-alive connections too (call `destroyAll()` to force fresh
 * ones). Every byte the client sent is recorded, so a test can assert on what
 * reached the primary (e.g. that no request left the repository namespace).
 *
 *   client --> [ proxy: record; maybe delay / drop / reset / blackhole ] --> upstream
 *   client <-- [ proxy: maybe delay / corrupt / truncate ]              <-- upstream
 */
export type FaultMode =
  | { kind: 'pass' }
  /** Holds each chunk in both directions for `ms` (order kept). */
  | { kind: 'delay'; ms: number }
  /** Closes connections (FIN) as soon as they carry data. */
  | { kind: 'drop' }
  /** Resets connections (RST). */
  | { kind: 'reset' }
  /** Forwards at most `afterBytes` response bytes per connection, then closes. */
  | { kind: 'truncate'; afterBytes: number }
  /** Flips one byte past the header block in each response chunk, with `probability` (default 1). */
  | { kind: 'corrupt'; probability?: number }
  /** Accepts and reads, never answers, never closes. */
  | { kind: 'blackhole' };

export interface FaultProxy {
  url: string;
  port: number;
  setMode(mode: FaultMode): void;
  mode(): FaultMode;
  /** Destroys every live connection (both sides). */
  destroyAll(): void;
  /** Request lines (`GET /path HTTP/1.1`) seen from clients, in order. */
  requestLines(): string[];
  /** All bytes clients sent, latin1. */
  received(): string;
  connectionCount(): number;
  close(): Promise<void>;
}

export async function startFaultProxy(options: { upstream: string; mode?: FaultMode; random?: () => number }): Promise<FaultProxy> {
  const target = new URL(options.upstream);
  const random = options.random ?? Math.random;
  let current: FaultMode = options.mode ?? { kind: 'pass' };
  const live = new Set<Socket>();
  const received: Buffer[] = [];
  let connections = 0;

  const server: Server = createServer((client) => {
    connections++;
    live.add(client);
    let upstream: Socket | undefined;
    let responseBytes = 0;
    let chain = Promise.resolve();
    const closeBoth = (): void => {
      client.destroy();
      upstream?.destroy();
    };
    client.on('close', () => {
      live.delete(client);
      upstream?.destroy();
    });
    client.on('error', () => upstream?.destroy());

    const ensureUpstream = (): Socket => {
      if (upstream !== undefined) return upstream;
      const socket = connect(Number(target.port || 80), target.hostname);
      upstream = socket;
      live.add(socket);
      socket.on('close', () => {
        live.delete(socket);
        // A blackhole never closes: the client keeps a silent, open connection (as when the far end
        // gave up behind a partition and its FIN or RST never arrived).
        if (current.kind === 'blackhole') return;
        // Let queued (delayed) chunks drain before closing the client side.
        void chain.then(() => client.end());
      });
      socket.on('error', () => {
        if (current.kind !== 'blackhole') client.destroy();
      });
      socket.on('data', (chunk: Buffer) => {
        const mode = current;
        if (mode.kind === 'blackhole') return;
        if (mode.kind === 'reset') return void client.resetAndDestroy();
        if (mode.kind === 'drop') return closeBoth();
        let out = chunk;
        if (mode.kind === 'truncate') {
          const room = mode.afterBytes - responseBytes;
          if (room <= 0) return closeBoth();
          if (out.length > room) {
            out = out.subarray(0, room);
            responseBytes += out.length;
            forward(out, 0);
            void chain.then(closeBoth);
            return;
          }
        }
        if (mode.kind === 'corrupt' && random() < (mode.probability ?? 1)) out = flipBodyByte(out, random);
        responseBytes += out.length;
        forward(out, mode.kind === 'delay' ? mode.ms : 0);
      });
      return socket;
    };

    const forward = (data: Buffer, delayMs: number): void => {
      chain = chain.then(async () => {
        if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
        if (!client.destroyed) client.write(data);
      });
    };

    client.on('data', (chunk: Buffer) => {
      received.push(chunk);
      const mode = current;
      if (mode.kind === 'drop') return closeBoth();
      if (mode.kind === 'reset') return void client.resetAndDestroy();
      if (mode.kind === 'blackhole') return;
      const socket = ensureUpstream();
      if (mode.kind === 'delay') {
        setTimeout(() => {
          if (!socket.destroyed) socket.write(chunk);
        }, mode.ms);
      } else socket.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    setMode(mode) {
      current = mode;
    },
    mode: () => current,
    destroyAll() {
      for (const socket of live) socket.destroy();
      live.clear();
    },
    requestLines() {
      const text = Buffer.concat(received).toString('latin1');
      return [...text.matchAll(/(?:^|\r\n)([A-Z]+ \S+ HTTP\/1\.[01])\r\n/g)].map((m) => m[1]!);
    },
    received: () => Buffer.concat(received).toString('latin1'),
    connectionCount: () => connections,
    async close() {
      for (const socket of live) socket.destroy();
      live.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Flips a byte after the HTTP header block if the chunk has one, else anywhere (a body continuation). */
function flipBodyByte(chunk: Buffer, random: () => number): Buffer {
  const headerEnd = chunk.indexOf('\r\n\r\n');
  const start = headerEnd === -1 ? (chunk.subarray(0, 5).toString('latin1') === 'HTTP/' ? chunk.length : 0) : headerEnd + 4;
  if (start >= chunk.length) return chunk;
  const copy = Buffer.from(chunk);
  const at = start + Math.floor(random() * (copy.length - start));
  copy[at] = copy[at]! ^ 0x5a;
  return copy;
}
