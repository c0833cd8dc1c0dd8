import { signProxyAnswer, type ProxyAnswerFields, type SigningKey } from '@metasync/shared';

/**
 * Signatures vouching for repository answers (shared proxy-answer.ts), so a
 * mirror's proxy fallback can tell the primary's bytes from a hop's. One
 * Ed25519 signature costs ~45 µs of CPU on the 2-core CI box, where the route
 * costs ~200-300 µs per request; signing every answer measured +100-160 µs
 * per request under load, memoised +0 (within noise) for 1,000 paths read at
 * random at one head. A path asked again at the same head (every mirror that
 * lacks it, Composer clients of the primary) reuses its signature. Keyed by
 * everything signed and the key, so a publish (new seq) or a rotation signs afresh.
 *
 * Bounded like the mirror's header memo: two generations of `maxEntries`
 * keys, the older dropped whole when the newer fills (no per-hit bookkeeping).
 */
export interface AnswerSignatures {
  /** The HEADERS.signature value for `fields` under `key`. */
  signatureFor(key: SigningKey, fields: ProxyAnswerFields): string;
  /** Signatures computed (not reused) so far: for tests and measurement. */
  signed(): number;
}

export function createAnswerSignatures(options: { maxEntries?: number } = {}): AnswerSignatures {
  const maxEntries = options.maxEntries ?? 4_096;
  let current = new Map<string, string>();
  let previous = new Map<string, string>();
  let signed = 0;

  return {
    signatureFor(key, fields) {
      const cacheKey = `${key.keyId}\n${fields.path}\n${fields.sha256}\n${fields.seq}\n${fields.mtime}`;
      let signature = current.get(cacheKey);
      if (signature !== undefined) return signature;
      signature = previous.get(cacheKey);
      if (signature === undefined) {
        signature = signProxyAnswer(key, fields);
        signed++;
      }
      if (current.size >= maxEntries) {
        previous = current;
        current = new Map();
      }
      current.set(cacheKey, signature);
      return signature;
    },
    signed: () => signed,
  };
}
