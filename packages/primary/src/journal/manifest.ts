import type { Origin } from './record.js';

/** What the primary knows about one live path. `mtime` is the commit time of the generation that last changed it. */
export interface ManifestEntry {
  sha256: string;
  size: number;
  mtime: number;
  origin: Origin;
}

/** path -> entry for every path that exists at the head generation. */
export type Manifest = Map<string, ManifestEntry>;
