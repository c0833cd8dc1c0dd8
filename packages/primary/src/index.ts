/**
 * `@metasync/primary`: the daemon is `metasync-primary` (main.ts). What is
 * exported here is for the repository's own cross-process tests, benchmarks
 * and scripts, so they import the package by name instead of its file layout.
 */
export { buildApp, type AppDeps } from './app.js';
export { loadConfig, OPTION_SPECS } from './config.js';
export { openPrimaryCore, type PrimaryCore } from './data-dir.js';
export { renderPackage, renderRootPackagesJson } from './composer/render.js';
export type { VersionData } from './composer/minify.js';
export { createPrimaryS3 } from './s3/setup.js';
export { createObjectGc, type ObjectGcRun } from './store/gc.js';
