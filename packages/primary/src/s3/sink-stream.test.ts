import { readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { isMetasyncError, s3ClientConfig } from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SNAPSHOT_BODY_OFFSET, type SignedSnapshot } from '../journal/snapshot-file.js';
import { createS3Sink } from './sink.js';

const log = createLogger({ name: 's3-sink-stream-test', level: 'silent' });

/** Descriptors this process holds on files under `dir` (a deleted one still counts: it pins the space). */
function openFilesUnder(dir: string): string[] {
  const open: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) open.push(target);
    } catch {
      // closed while listed
    }
  }
  return open;
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-sink-stream-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a streamed snapshot PUT', () => {
  it('closes every body an attempt opened, also those the server refused before reading', async () => {
    // 3 MiB: the SDK sends `Expect: 100-continue`, and this server answers 503 without asking for the body.
    const length = 3 * 2 ** 20;
    const path = join(dir, 'snapshot-0000000000000009.bin');
    await writeFile(path, Buffer.alloc(SNAPSHOT_BODY_OFFSET + length, 0x61));
    const snapshot: SignedSnapshot = { seq: 9, time: 1, path, length, sha256: 'ab'.repeat(32), statement: 's', signature: 'k.s' };
    let puts = 0;
    const answer = (req: IncomingMessage, res: ServerResponse): void => {
      if (req.method === 'HEAD') {
        res.writeHead(404, { connection: 'close' }).end();
        return;
      }
      puts++;
      res.writeHead(503, { 'content-type': 'application/xml', connection: 'close' });
      res.end('<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>slow down</Message></Error>');
    };
    const server = createServer(answer);
    server.on('checkContinue', answer);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = new S3Client({
      ...s3ClientConfig({
        region: 'us-east-1',
        endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
        forcePathStyle: true,
      }),
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
    // The SDK warns on stderr for a failed streaming request; not what this test reads.
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const sink = createS3Sink({
        client,
        bucket: 'b',
        log,
        retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 },
        sleep: () => Promise.resolve(),
      });
      const err: unknown = await sink.putSnapshot({ snapshot, objectsDurable: true }).catch((e: unknown) => e);
      expect(isMetasyncError(err, 'METASYNC_ERR_S3_CALL_FAILED')).toBe(true);
      expect(puts).toBe(3);
      await new Promise((resolve) => setTimeout(resolve, 100)); // a destroy closes its descriptor on the next turns
      expect(openFilesUnder(dir)).toEqual([]);
      expect(await readdir(dir)).toEqual([basename(path)]);
    } finally {
      warn.mockRestore();
      client.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
