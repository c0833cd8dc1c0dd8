/**
 * The primary's options for its local object store GC (gc.ts), spread
 * into config.ts's option table and schema (like publish/options.ts).
 */
import { z } from 'zod';
import type { OptionSpec } from '@metasync/shared/daemon';
import { DEFAULT_OBJECT_GC_GRACE_MS, DEFAULT_OBJECT_GC_INTERVAL_MS } from './gc.js';

export const OBJECT_GC_OPTIONS = [
  {
    key: 'objectGcGraceMs',
    flag: '--object-gc-grace-ms <ms>',
    env: 'METASYNC_OBJECT_GC_GRACE_MS',
    description:
      'a local object no manifest, kept snapshot or journal record in the changes window names is ' +
      'deleted only after being unreferenced this long (covers mirrors still fetching objects of ' +
      'recent generations)',
    defaultValue: String(DEFAULT_OBJECT_GC_GRACE_MS),
  },
  {
    key: 'objectGcIntervalMs',
    flag: '--object-gc-interval-ms <ms>',
    env: 'METASYNC_OBJECT_GC_INTERVAL_MS',
    description:
      'time between object GC runs, each scanning 1/8 of the local object store; 0 = never delete local objects (S3 objects are never deleted)',
    defaultValue: String(DEFAULT_OBJECT_GC_INTERVAL_MS),
  },
] as const satisfies readonly OptionSpec[];

const milliseconds = z.string().regex(/^\d+$/, 'must be a non-negative integer (ms)').transform(Number);

export const OBJECT_GC_SCHEMA_SHAPE = {
  objectGcGraceMs: milliseconds,
  objectGcIntervalMs: milliseconds,
};

export interface ObjectGcConfig {
  graceMs: number;
  /** 0: disabled. */
  intervalMs: number;
}

export function objectGcConfig(raw: { objectGcGraceMs: number; objectGcIntervalMs: number }): ObjectGcConfig {
  return { graceMs: raw.objectGcGraceMs, intervalMs: raw.objectGcIntervalMs };
}
