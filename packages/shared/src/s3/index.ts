/** `@metasync/shared/s3`: bounded retries around S3 SDK calls. The bucket layout is contract: protocol/s3-layout.ts, in `@metasync/shared`. */
export * from './s3-retry.js';
