import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '@metasync/shared/daemon';
import {
  answerForwarded,
  createForwarder,
  type ForwardControl,
  type ForwardedAnswer,
  type ForwardedExchange,
  type ForwardedRequest,
} from './forward.js';

/**
 * Both halves of forwarding in one process, joined as the threads are (each
 * message delivered on a later turn, as a MessagePort does): a real HTTP
 * server plays the worker, a fastify app the main thread. The app's answer is
 * a large stream whose production is counted, to see what the window holds back.
 */
const CHUNK = 64 * 1024;
const TOTAL_CHUNKS = 320; // 20 MiB
let server: Server | undefined;
let app: FastifyInstance | undefined;

afterEach(async () => {
  await new Promise((resolve) => (server === undefined ? resolve(undefined) : server.close(resolve)));
  await app?.close();
  server = undefined;
  app = undefined;
});

async function start(): Promise<{ url: string; produced: () => number; sourceClosed: () => boolean }> {
  let produced = 0;
  let closed = false;
  app = Fastify();
  app.get('/big', async (_request, reply) => {
    let sent = 0;
    const source = new Readable({
      read() {
        if (sent === TOTAL_CHUNKS) return void this.push(null);
        produced += CHUNK;
        this.push(Buffer.alloc(CHUNK, sent++ % 251));
      },
    });
    source.once('close', () => (closed = true));
    return reply.header('content-length', CHUNK * TOTAL_CHUNKS).send(source);
  });
  const logger = createLogger({ name: 'forward-test', level: 'silent' });
  const exchanges = new Map<number, ForwardedExchange>();
  const main = app;
  const toWorker = (answer: ForwardedAnswer): void => void setImmediate(() => forwarder.receive(answer));
  const toMain = (message: ForwardedRequest | ForwardControl): void =>
    void setImmediate(() => {
      if (message.type === 'request')
        exchanges.set(
          message.id,
          answerForwarded({ app: main, request: message, send: toWorker, logger, done: () => exchanges.delete(message.id) }),
        );
      else if (message.type === 'ack') exchanges.get(message.id)?.ack(message.bytes);
      else exchanges.get(message.id)?.abort();
    });
  const forwarder = createForwarder(toMain);
  server = createServer((req, res) => forwarder.forward(req, res));
  await new Promise<void>((resolve) => server!.listen({ host: '127.0.0.1', port: 0 }, resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/big`, produced: () => produced, sourceClosed: () => closed };
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('forwarding to the main thread', () => {
  it('streams a large answer whole and in order, holding back production while the client does not read', async () => {
    const { url, produced } = await start();
    let received = 0;
    let inOrder = true;
    await new Promise<void>((resolve, reject) => {
      const req = request(url, { agent: false }, (res) => {
        expect(res.statusCode).toBe(200);
        expect(Number(res.headers['content-length'])).toBe(CHUNK * TOTAL_CHUNKS);
        res.pause();
        // The client reads nothing for a while: the main side must stop within its window plus buffers.
        setTimeout(() => {
          try {
            expect(produced()).toBeLessThan(8 * 1024 * 1024);
          } catch (err) {
            reject(err as Error);
          }
          res.on('data', (chunk: Buffer) => {
            for (let i = 0; i < chunk.length; i += 4096) if (chunk[i] !== Math.floor((received + i) / CHUNK) % 251) inOrder = false;
            received += chunk.length;
          });
          res.on('end', resolve);
          res.resume();
        }, 500);
      });
      req.on('error', reject);
      req.end();
    });
    expect(received).toBe(CHUNK * TOTAL_CHUNKS);
    expect(inOrder).toBe(true);
  });

  it("ends the main thread's answer when the client leaves mid-body", async () => {
    const { url, produced, sourceClosed } = await start();
    await new Promise<void>((resolve, reject) => {
      const req = request(url, { agent: false }, (res) => {
        let got = 0;
        res.on('data', (chunk: Buffer) => {
          got += chunk.length;
          if (got > 2 * 1024 * 1024) {
            req.destroy();
            resolve();
          }
        });
      });
      req.on('error', () => undefined);
      req.on('close', resolve);
      setTimeout(() => reject(new Error('no body arrived')), 10_000).unref();
      req.end();
    });
    await until(sourceClosed, "the app's stream to close");
    expect(produced()).toBeLessThan(CHUNK * TOTAL_CHUNKS);
  });
});
