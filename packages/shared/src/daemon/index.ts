/** `@metasync/shared/daemon`: what each daemon's main.ts and app.ts wire up (CLI options, logger, the limited HTTP server, the landing page). Helpers, not contract. */
export * from './cli-options.js';
export * from './logger.js';
export * from './http-limits.js';
export * from './landing-page.js';
export * from './tls-options.js';
export * from './tls-pair.js';
export * from './server-factory.js';
export * from './memory-release.js';
export * from './memory-allocator.js';
export * from './loop-slices.js';
