import { isMetasyncError } from '@metasync/shared';
import { describe, expect, it } from 'vitest';
import { storeError } from './errors.js';

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code });

describe('store errors', () => {
  it.each(['ENOSPC', 'EDQUOT'])('reports %s as METASYNC_ERR_STORE_NO_SPACE naming the path, with the errno as cause', (code) => {
    const cause = errno(code);
    const error = storeError(cause, '/data/objects/ab/cd');
    expect(isMetasyncError(error, 'METASYNC_ERR_STORE_NO_SPACE')).toBe(true);
    expect((error as Error).message).toContain('/data/objects/ab/cd');
    expect((error as { details: unknown }).details).toEqual({ path: '/data/objects/ab/cd' });
    expect((error as Error).cause).toBe(cause);
  });

  it('passes any other error through unchanged', () => {
    const other = errno('EIO');
    expect(storeError(other, '/x')).toBe(other);
  });
});
