/**
 * Mirror credentials: which mirror ids are enrolled, and the sha256 of each
 * one's bearer secret. The file lives in the primary's data dir
 * (`mirror-credentials.json`, 0600) and is followed like the tokens file:
 *
 *   { "mirrors": [ { "mirrorId": "eu-1", "sha256": "<hex of sha256(secret)>", "revoked": false,
 *                    "createdAt": "2026-12-01T06:00:00.000Z" } ] }
 *
 * Only the digest is stored (auth/hashed-secrets.ts, the same machinery as
 * publish tokens), so the file is not itself a credential. Issuing again for a
 * mirror id replaces its entry: the old secret stops working at once.
 */
import { z } from 'zod';
import { MIRROR_ID_PATTERN, metasyncError } from '@metasync/shared';
import { createDigestMatcher, mintSecret, sha256OfSecret } from '../auth/hashed-secrets.js';

export const MIRROR_CREDENTIALS_FILE = 'mirror-credentials.json';

export interface MirrorCredentialEntry {
  mirrorId: string;
  /** Lowercase hex sha256 of the secret's UTF-8 bytes. */
  sha256: string;
  revoked: boolean;
  createdAt?: string;
  revokedAt?: string;
}

/**
 * What a presented credential is for a mirror id:
 *   ok            enrolled for this id, not revoked
 *   unknown       no entry has this secret
 *   other-mirror  the secret of another mirror id
 *   revoked       this id's secret, revoked
 */
export type MirrorCredentialCheck = 'ok' | 'unknown' | 'other-mirror' | 'revoked';

const entrySchema = z.object({
  mirrorId: z.string().regex(MIRROR_ID_PATTERN, 'must be 1-64 of [A-Za-z0-9_.:-]'),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits (sha256 of the secret)'),
  revoked: z.boolean().default(false),
  createdAt: z.string().optional(),
  revokedAt: z.string().optional(),
});
const fileSchema = z.object({ mirrors: z.array(entrySchema) });

/** Parses the file's text; throws METASYNC_ERR_CONFIG_INVALID naming the file and every problem. */
export function parseMirrorCredentials(text: string, path: string): MirrorCredentialEntry[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw metasyncError(
      'METASYNC_ERR_CONFIG_INVALID',
      `mirror credentials file ${path} is not valid JSON: ${(err as Error).message}`,
      { path },
      err,
    );
  }
  const result = fileSchema.safeParse(json);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `mirror credentials file ${path}: ${problems.join('; ')}`, { path });
  }
  const seen = new Set<string>();
  for (const [i, entry] of result.data.mirrors.entries()) {
    if (seen.has(entry.mirrorId))
      throw metasyncError(
        'METASYNC_ERR_CONFIG_INVALID',
        `mirror credentials file ${path}: mirrors.${i}.mirrorId: ${entry.mirrorId} is listed twice`,
        {
          path,
        },
      );
    seen.add(entry.mirrorId);
  }
  return result.data.mirrors.map(({ createdAt, revokedAt, ...entry }) => ({
    ...entry,
    ...(createdAt === undefined ? {} : { createdAt }),
    ...(revokedAt === undefined ? {} : { revokedAt }),
  }));
}

export function serializeMirrorCredentials(entries: readonly MirrorCredentialEntry[]): string {
  return `${JSON.stringify({ mirrors: entries }, null, 2)}\n`;
}

/** A new secret (`msm_` + 256 bits) for `mirrorId`; its entry replaces any earlier one of that id. */
export function issueCredential(
  entries: readonly MirrorCredentialEntry[],
  options: { mirrorId: string; nowMs: number },
): { secret: string; entries: MirrorCredentialEntry[] } {
  if (!MIRROR_ID_PATTERN.test(options.mirrorId)) {
    throw metasyncError(
      'METASYNC_ERR_REQUEST_INVALID',
      `mirror id ${JSON.stringify(options.mirrorId.slice(0, 80))} must be 1-64 of [A-Za-z0-9_.:-]`,
      {
        field: 'mirrorId',
        rule: MIRROR_ID_PATTERN.source,
      },
    );
  }
  const secret = mintSecret('msm_');
  const entry: MirrorCredentialEntry = {
    mirrorId: options.mirrorId,
    sha256: sha256OfSecret(secret),
    revoked: false,
    createdAt: new Date(options.nowMs).toISOString(),
  };
  return { secret, entries: [...entries.filter((e) => e.mirrorId !== options.mirrorId), entry] };
}

/** Marks `mirrorId` revoked (kept for the record). Revoking twice, or an id never enrolled, changes nothing. */
export function revokeCredential(
  entries: readonly MirrorCredentialEntry[],
  options: { mirrorId: string; nowMs: number },
): { outcome: 'revoked' | 'already-revoked' | 'unknown'; entries: MirrorCredentialEntry[] } {
  const entry = entries.find((e) => e.mirrorId === options.mirrorId);
  if (entry === undefined) return { outcome: 'unknown', entries: [...entries] };
  if (entry.revoked) return { outcome: 'already-revoked', entries: [...entries] };
  const revokedAt = new Date(options.nowMs).toISOString();
  return { outcome: 'revoked', entries: entries.map((e) => (e === entry ? { ...e, revoked: true, revokedAt } : e)) };
}

/** Constant-time check of a presented secret against every entry (auth/hashed-secrets.ts). */
export function createCredentialMatcher(
  entries: readonly MirrorCredentialEntry[],
): (mirrorId: string, presented: string) => MirrorCredentialCheck {
  const match = createDigestMatcher(entries);
  return (mirrorId, presented) => {
    const found = match(presented);
    if (found === undefined) return 'unknown';
    if (found.mirrorId !== mirrorId) return 'other-mirror';
    return found.revoked ? 'revoked' : 'ok';
  };
}
