import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { metasyncError } from '../errors.js';
import type { Logger } from './logger.js';
import type { TlsFiles } from './tls-options.js';

/** A certificate chain and its key, read together and checked to belong together. */
export interface TlsPair {
  cert: Buffer;
  key: Buffer;
  /** Of the leaf certificate: what an operator compares with certbot's output. */
  serial: string;
  notAfter: string;
  subject: string;
}

/**
 * Reads and checks the pair (sync: a fastify serverFactory is sync, and this
 * runs at start and once per renewal). Throws METASYNC_ERR_CONFIG_INVALID
 * naming the file and the problem: unreadable, not PEM, or a key that is not
 * the certificate's (OpenSSL refuses the pair).
 */
export function loadTlsPair(files: Pick<TlsFiles, 'certFile' | 'keyFile'>): TlsPair {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(files.certFile);
    key = readFileSync(files.keyFile);
  } catch (err) {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `TLS certificate or key cannot be read: ${(err as Error).message}`, files, err);
  }
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
    createSecureContext({ cert, key });
  } catch (err) {
    throw metasyncError(
      'METASYNC_ERR_CONFIG_INVALID',
      `TLS certificate ${files.certFile} and key ${files.keyFile} do not make a usable pair: ${(err as Error).message}`,
      files,
      err,
    );
  }
  return { cert, key, serial: leaf.serialNumber, notAfter: leaf.validTo, subject: leaf.subject };
}

/** What the watcher hands a new pair to: `server.setSecureContext` of a TLS server. */
export interface SecureContextTarget {
  setSecureContext(options: { cert: Buffer; key: Buffer }): void;
}

/**
 * Polls the two files every `reloadIntervalMs` (stat follows symlinks, so both
 * an in-place rewrite and certbot's symlink swap change what it sees) and
 * installs a new pair for new connections; open connections keep theirs.
 *
 *   stats unchanged since the last load ──> nothing
 *   changed, but not yet equal on two ticks ──> wait (certbot writes cert and key one after the other)
 *   changed and settled ──> load: ok ──> setSecureContext, log 'tls certificate reloaded'
 *                                 bad ──> keep the current pair, log an error (once per change)
 */
export function watchTlsPair(options: { files: TlsFiles; target: SecureContextTarget; logger: Logger; loaded: TlsPair }): { stop(): void } {
  const { files, target, logger } = options;
  let current = options.loaded;
  let loadedStamp: string | undefined;
  let pendingStamp: string | undefined;
  let busy = false;
  const stamp = async (): Promise<string> => {
    const parts = await Promise.all(
      [files.certFile, files.keyFile].map(async (file) => {
        try {
          const s = await stat(file);
          return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
        } catch (err) {
          return `missing:${(err as NodeJS.ErrnoException).code ?? 'error'}`;
        }
      }),
    );
    return parts.join('|');
  };
  const tick = async (): Promise<void> => {
    const now = await stamp();
    if (loadedStamp === undefined || now === loadedStamp) {
      loadedStamp ??= now;
      pendingStamp = undefined;
      return;
    }
    if (now !== pendingStamp) {
      pendingStamp = now;
      return;
    }
    loadedStamp = now;
    pendingStamp = undefined;
    try {
      const next = loadTlsPair(files);
      target.setSecureContext({ cert: next.cert, key: next.key });
      logger.info(
        { certFile: files.certFile, serial: next.serial, notAfter: next.notAfter, previousSerial: current.serial },
        'tls certificate reloaded',
      );
      current = next;
    } catch (err) {
      const failure = metasyncError(
        'METASYNC_ERR_TLS_RELOAD_FAILED',
        (err as Error).message,
        { certFile: files.certFile, keyFile: files.keyFile },
        err,
      );
      logger.error({ err: failure, serial: current.serial }, 'tls certificate reload failed, keeping the current one');
    }
  };
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    tick()
      .catch((err: unknown) => logger.error({ err }, 'tls certificate check failed'))
      .finally(() => {
        busy = false;
      });
  }, files.reloadIntervalMs);
  timer.unref();
  // The first stamp is taken at once so that a renewal before the first tick is still seen as a change.
  void stamp().then((first) => {
    loadedStamp ??= first;
  });
  return { stop: () => clearInterval(timer) };
}
