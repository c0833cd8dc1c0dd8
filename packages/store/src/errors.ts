import { hasErrno, metasyncError } from '@metasync/shared';

/** A full disk (or quota) is the operator's to fix: a coded error naming the path, never a bare errno. Other errors pass through. */
export function storeError(err: unknown, path: string): unknown {
  if (hasErrno(err, 'ENOSPC') || hasErrno(err, 'EDQUOT')) {
    return metasyncError('METASYNC_ERR_STORE_NO_SPACE', `no space left writing ${path}`, { path }, err);
  }
  return err;
}
