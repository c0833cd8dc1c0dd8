/** `@metasync/shared/s3`: bounded retries around S3 SDK calls, and the bucket settings both daemons take. The bucket layout is contract: protocol/s3-layout.ts, in `@metasync/shared`. */
export * from './s3-retry.js';
export * from './s3-options.js';
