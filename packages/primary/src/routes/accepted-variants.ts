import { chooseEncoding } from '@metasync/shared';
import type { Variant } from '@metasync/store';

/**
 * The stored variants a client accepts, best first, raw bytes last (small or
 * incompressible objects keep no compressed variant). A client taking br and
 * gzip gets gzip from an object whose brotli variant is not made yet (deferred
 * for bulk sources, publisher.ts), never the raw bytes.
 */
export function acceptedVariants(acceptEncoding: string | undefined): Variant[] {
  const best = chooseEncoding(acceptEncoding, ['br', 'gzip']);
  if (best === 'identity') return ['identity'];
  if (best === 'br' && chooseEncoding(acceptEncoding, ['gzip']) === 'gzip') return ['br', 'gzip', 'identity'];
  return [best, 'identity'];
}
