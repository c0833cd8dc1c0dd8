/** `@metasync/shared/fs`: durable local files (atomic write, JSON read, checksummed record log). Helpers, not contract. */
export * from './atomic-write.js';
export * from './json-file.js';
export * from './record-log.js';
export * from './lined-json.js';
