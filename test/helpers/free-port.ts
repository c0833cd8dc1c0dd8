import { createServer } from 'node:net';

/**
 * A loopback port that was free a moment ago: for daemons that must come back
 * on the same address after a restart, where port 0 would move them.
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no loopback port');
  return address.port;
}
