/**
 * Dist archives through the mirror network (docs/protocol.md, "Dist archives").
 *
 *   client  GET /dists/<vendor>/<name>/<reference>.<type>  -> mirror (its own archive cache; a miss fetches the
 *                                                             dist url the metadata names, once per archive)
 *   mirror  POST /sync/v1/dist-pins {package, reference, type, sha256, size, source}  -> primary (mirror credential)
 *   primary first report wins: dist-pins/<vendor>/<name>.json, an ordinary path of its signed generations,
 *           which every mirror applies like any other and never serves (`dist-pins` is reserved)
 *
 * So the first bytes any mirror fetched for a (package, reference, type) are the bytes every mirror
 * serves: code hosts regenerate archives, and two mirrors must not hand out two different zips under one name.
 */
import { z } from 'zod';
import { isComposerPackageName } from './composer-names.js';
import { isSha256Hex } from './content-address.js';
import { SYNC_PREFIX } from './routes.js';

/** The mirror's archive route (a daemon route: `dists` is a reserved first segment). */
export const DISTS_PREFIX = '/dists/';

/** The primary's pin report route (mirror credential). */
export const DIST_PINS_ROUTE = `${SYNC_PREFIX}/dist-pins`;

/** First segment of the pins documents in the repository's generations; reserved, so never served as content. */
export const DIST_PINS_SEGMENT = 'dist-pins';

/** Archive types Composer downloads (its `dist.type`), with the Content-Type a mirror answers. */
export const DIST_CONTENT_TYPES = {
  zip: 'application/zip',
  tar: 'application/x-tar',
  gzip: 'application/gzip',
  xz: 'application/x-xz',
  bzip2: 'application/x-bzip2',
  rar: 'application/vnd.rar',
  '7z': 'application/x-7z-compressed',
  phar: 'application/octet-stream',
} as const;

export type DistType = keyof typeof DIST_CONTENT_TYPES;

export function isDistType(type: string): type is DistType {
  return Object.hasOwn(DIST_CONTENT_TYPES, type);
}

/**
 * What Composer puts in `%reference%` (ComposerMirror::processUrl): the reference when it is hex,
 * else its md5. 1-128 lowercase hex digits here; an empty reference has no archive to mirror.
 */
export function isDistReference(reference: string): boolean {
  return /^[0-9a-f]{1,128}$/.test(reference);
}

/** One archive: the package, the reference as it appears in the URL, and the type. */
export interface DistKey {
  package: string;
  reference: string;
  type: DistType;
}

/** `acme/foo/<ref>.zip` (the URL path after /dists/) -> its key; undefined when it is not one. */
export function parseDistPath(rest: string): DistKey | undefined {
  const match = /^([^/]+\/[^/]+)\/([^/.]+)\.([a-z0-9]+)$/.exec(rest);
  if (match === null) return undefined;
  const [, name, reference, type] = match as unknown as [string, string, string, string];
  if (!isComposerPackageName(name) || !isDistReference(reference) || !isDistType(type)) return undefined;
  return { package: name, reference, type };
}

/** The pins document of a package: `dist-pins/<vendor>/<name>.json`. */
export function distPinsPathFor(name: string): string {
  return `${DIST_PINS_SEGMENT}/${name}.json`;
}

/** `<reference>.<type>`: a pin's key inside its package's document. */
export function distPinKey(key: Pick<DistKey, 'reference' | 'type'>): string {
  return `${key.reference}.${key.type}`;
}

const sha256 = z.string().refine(isSha256Hex, 'must be a lowercase sha256 hex digest');

export const distPinSchema = z.object({
  sha256,
  size: z.number().int().nonnegative(),
  /** When the primary recorded it (ms). */
  time: z.number().int().nonnegative(),
  /** Base URL of the mirror that reported it: where the pinned bytes can be fetched again. */
  source: z.string().url().optional(),
});
export type DistPin = z.infer<typeof distPinSchema>;

/** `dist-pins/<vendor>/<name>.json`: every pinned archive of one package, by distPinKey. */
export const distPinsDocumentSchema = z.object({
  package: z.string().refine(isComposerPackageName, 'must be a Composer package name'),
  pins: z.record(z.string(), distPinSchema),
});
export type DistPinsDocument = z.infer<typeof distPinsDocumentSchema>;

/** POST /sync/v1/dist-pins body. */
export const distPinReportSchema = z.object({
  package: z.string().refine(isComposerPackageName, 'must be a Composer package name'),
  reference: z.string().refine(isDistReference, 'must be 1-128 lowercase hex digits'),
  type: z.string().refine(isDistType, 'must be a Composer dist type'),
  sha256,
  size: z.number().int().nonnegative(),
  source: z.string().url().optional(),
});
export type DistPinReport = z.infer<typeof distPinReportSchema>;

/** The primary's answer: the pin now in force (the reporter's, or an earlier one that won). */
export interface DistPinAnswer {
  pin: DistPin;
  /** True when this report set the pin. */
  created: boolean;
  /** The generation that carries it (the mirror waits for it before trusting its own index). */
  seq: number;
}
