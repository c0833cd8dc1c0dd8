/**
 * `@metasync/shared`: the contract between primary and mirror (protocol/) and
 * the error registry. Helpers live under subpaths: `@metasync/shared/daemon`,
 * `@metasync/shared/fs`, `@metasync/shared/http`, `@metasync/shared/s3`; none is re-exported here, so
 * importing the contract loads no server code.
 */
export * from './errors.js';
export * from './protocol/routes.js';
export * from './protocol/documents.js';
export * from './protocol/pack-frame.js';
export * from './protocol/signing.js';
export * from './protocol/snapshot-statement.js';
export * from './protocol/proxy-answer.js';
export * from './protocol/content-address.js';
export * from './protocol/repo-path.js';
export * from './protocol/composer-names.js';
export * from './protocol/s3-layout.js';
export * from './protocol/http-cache.js';
export * from './protocol/dists.js';
export * from './tls-client.js';
export * from './runtime/zlib-chunk.js';
