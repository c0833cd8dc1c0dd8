import { signProxyAnswer, type ProxyAnswerFields, type SigningKey } from '@metasync/shared';

/**
 * Signatures vouching for repository answers (shared proxy-answer.ts), so a
 * mirror's proxy fallback can tell the primary's bytes from a hop's. One
 * Ed25519 signature costs ~45 µs on the 2-core CI box, about a third of the
 * route's own cost; a path asked again at the same head (the mirrors that
 * lack it, Composer clients of the primary) reuses it. Keyed by everything
 * signed and the key, so a publish (new seq) or a key rotation signs afresh.
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
