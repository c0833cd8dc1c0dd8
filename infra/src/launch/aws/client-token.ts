import { createHash } from 'node:crypto';

/** EC2 accepts client tokens of up to 64 ASCII characters. */
export const CLIENT_TOKEN_MAX_CHARS = 64;

/**
 * The RunInstances ClientToken for one mirror on one release. Deterministic,
 * so a rerun after a crash sends the same token and EC2 answers with the
 * reservation it already made instead of a second instance.
 *
 * EC2 keeps answering a token with its instance for at least 24 hours after
 * that instance was terminated, so a mirror relaunched on the same release
 * after a retire would get the dead instance back. `attempt` moves past such a
 * token: the launcher tries 0, 1, 2... and skips each whose instance is gone,
 * which stays deterministic across reruns.
 */
export function deriveClientToken(input: { mirrorId: string; releaseVersion: string; attempt: number }): string {
  const digest = createHash('sha256').update(`metasync-launch\0${input.mirrorId}\0${input.releaseVersion}\0${input.attempt}`).digest('hex');
  return `metasync-${digest.slice(0, 48)}`;
}
