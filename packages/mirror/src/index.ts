export { buildApp, type AppOptions } from './app.js';
export { loadConfig, MIRROR_OPTIONS, type MirrorConfig } from './config.js';
export { openMirror, type Mirror } from './mirror.js';
export { createS3BootstrapSource } from './sync/s3-source.js';
