/**
 * Publish tokens: who may publish which vendors, and who may call admin routes.
 *
 * A tokens file (`--tokens-file`) is JSON the primary re-reads when it changes:
 *
 *   { "tokens": [ { "id": "ci-acme", "sha256": "<hex of sha256(secret)>",
 *                   "vendors": ["acme", "acme-*"], "admin": false, "revoked": false,
 *                   "createdAt": "2026-11-22T06:00:00.000Z" } ] }
 *
 * Only the sha256 of a secret is stored, so the file is not itself a credential.
 * A presented token is hashed once and compared against EVERY known digest with
 * `timingSafeEqual` (no early exit), so timing tells nothing about which entry,
 * if any, came close. Tokens from METASYNC_PUBLISH_TOKEN(_FILE) are all-vendor
 * admin tokens with ids `env-1`, `env-2`...
 *
 * Vendor patterns: `acme` (exactly that vendor), `acme-*` (`*` = any run of
 * vendor characters, anywhere in the pattern), `*` (every vendor).
 */
import { z } from 'zod';
import { metasyncError } from '@metasync/shared';
import { createDigestMatcher, mintSecret, sha256OfSecret } from '../auth/hashed-secrets.js';

export { sha256OfSecret };

export interface TokenEntry {
  id: string;
  /** Lowercase hex sha256 of the secret's UTF-8 bytes. */
  sha256: string;
  vendors: readonly string[];
  admin: boolean;
  revoked: boolean;
  createdAt?: string;
}

/** What a valid token is allowed to do; never carries the secret. */
export interface TokenIdentity {
  id: string;
  vendors: readonly string[];
  admin: boolean;
}

export type TokenMatch = { ok: true; identity: TokenIdentity } | { ok: false; revokedId?: string };

export const TOKEN_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
export const VENDOR_PATTERN = /^(?:\*|[a-z0-9*][a-z0-9_.*-]{0,99})$/;

const entrySchema = z.object({
  id: z.string().regex(TOKEN_ID_PATTERN, 'must be 1-64 of [A-Za-z0-9_.-]'),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits (sha256 of the secret)'),
  vendors: z
    .array(z.string().regex(VENDOR_PATTERN, 'must be a vendor name, a pattern with *, or *'))
    .min(1, 'must list at least one vendor pattern'),
  admin: z.boolean().default(false),
  revoked: z.boolean().default(false),
  createdAt: z.string().optional(),
});

const fileSchema = z.object({ tokens: z.array(entrySchema) });

/** Parses a tokens file's text; throws METASYNC_ERR_CONFIG_INVALID naming the file and every problem. */
export function parseTokensFile(text: string, path: string): TokenEntry[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `tokens file ${path} is not valid JSON: ${(err as Error).message}`, { path }, err);
  }
  const result = fileSchema.safeParse(json);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `tokens file ${path}: ${problems.join('; ')}`, { path, problems: problems.length });
  }
  const entries = result.data.tokens;
  const seenIds = new Set<string>();
  const seenHashes = new Set<string>();
  for (const [i, entry] of entries.entries()) {
    if (seenIds.has(entry.id))
      throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `tokens file ${path}: tokens.${i}.id: ${entry.id} is used twice`, { path });
    if (seenHashes.has(entry.sha256))
      throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `tokens file ${path}: tokens.${i}.sha256: same secret as another token`, { path });
    seenIds.add(entry.id);
    seenHashes.add(entry.sha256);
  }
  return entries.map((entry) => ({ ...entry, ...(entry.createdAt === undefined ? {} : { createdAt: entry.createdAt }) }));
}

export function serializeTokensFile(entries: readonly TokenEntry[]): string {
  return `${JSON.stringify({ tokens: entries }, null, 2)}\n`;
}

/** The all-vendor admin entries for tokens given in clear (METASYNC_PUBLISH_TOKEN). */
export function staticTokenEntries(secrets: readonly string[]): TokenEntry[] {
  return secrets
    .filter((secret) => secret.length > 0)
    .map((secret, i) => ({ id: `env-${i + 1}`, sha256: sha256OfSecret(secret), vendors: ['*'], admin: true, revoked: false }));
}

/** A new random secret (`mst_` + 256 bits, base64url) and its entry. */
export function mintToken(options: { id: string; vendors: readonly string[]; admin: boolean; nowMs: number }): {
  secret: string;
  entry: TokenEntry;
} {
  const secret = mintSecret('mst_');
  return {
    secret,
    entry: {
      id: options.id,
      sha256: sha256OfSecret(secret),
      vendors: [...options.vendors],
      admin: options.admin,
      revoked: false,
      createdAt: new Date(options.nowMs).toISOString(),
    },
  };
}

function patternRegex(pattern: string): RegExp {
  const body = pattern
    .split('*')
    .map((part) => part.replace(/[.]/g, '\\.'))
    .join('[a-z0-9_.-]*');
  return new RegExp(`^${body}$`);
}

/** True when one of `patterns` admits `vendor`. */
export function vendorAllowed(patterns: readonly string[], vendor: string): boolean {
  return patterns.some((pattern) => pattern === '*' || pattern === vendor || (pattern.includes('*') && patternRegex(pattern).test(vendor)));
}

/** A constant-time matcher over a fixed set of entries (revoked ones included, to tell them apart in logs). */
export function createTokenMatcher(entries: readonly TokenEntry[]): (presented: string) => TokenMatch {
  const match = createDigestMatcher(entries);
  return (presented) => {
    const found = match(presented);
    if (found === undefined) return { ok: false };
    if (found.revoked) return { ok: false, revokedId: found.id };
    return { ok: true, identity: { id: found.id, vendors: found.vendors, admin: found.admin } };
  };
}
