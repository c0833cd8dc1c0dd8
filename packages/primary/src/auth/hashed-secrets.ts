/**
 * Bearer secrets stored as their sha256 only: publish tokens (publish/tokens.ts)
 * and mirror credentials (mirrors/credentials.ts) share this, so there is one
 * way to mint a secret, one way to store it and one constant-time comparison.
 *
 * A presented secret is hashed once and compared against EVERY known digest
 * with `timingSafeEqual` (no early exit), so timing tells nothing about which
 * entry, if any, came close.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Lowercase hex sha256 of the secret's UTF-8 bytes: what files store instead of the secret. */
export function sha256OfSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** A new random secret: `prefix` + 256 bits, base64url (the prefix tells a leaked secret's kind at a glance). */
export function mintSecret(prefix: string): string {
  return `${prefix}${randomBytes(32).toString('base64url')}`;
}

/** The entry whose digest matches the presented secret, or undefined; revoked entries are matched too (callers tell them apart). */
export function createDigestMatcher<E extends { sha256: string }>(entries: readonly E[]): (presented: string) => E | undefined {
  const digests = entries.map((entry) => ({ entry, digest: Buffer.from(entry.sha256, 'hex') }));
  return (presented) => {
    const candidate = createHash('sha256').update(presented, 'utf8').digest();
    let found: E | undefined;
    for (const { entry, digest } of digests) {
      if (timingSafeEqual(candidate, digest)) found = entry;
    }
    return found;
  };
}
