import { createHash } from 'node:crypto';

const SHA256_HEX = /^[0-9a-f]{64}$/;

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function isSha256Hex(value: unknown): value is string {
  return typeof value === 'string' && SHA256_HEX.test(value);
}

/** pnpm cafs layout: `<2 hex>/<62 hex>` keeps directories small at 100k+ objects. */
export function objectRelPath(sha256: string): string {
  if (!isSha256Hex(sha256)) throw new TypeError(`expected a lowercase sha256 hex digest, got ${JSON.stringify(sha256)}`);
  return `${sha256.slice(0, 2)}/${sha256.slice(2)}`;
}
