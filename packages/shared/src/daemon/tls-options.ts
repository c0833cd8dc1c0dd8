import { z } from 'zod';
import type { OptionSpec } from './cli-options.js';

/**
 * The TLS flags both daemons share. With `--tls-cert` and `--tls-key` a daemon
 * serves HTTPS (HTTP/2 by ALPN, HTTP/1.1 as the fallback; tls-server.ts) and
 * re-reads the two files when they change (tls-pair.ts: certbot renews them in
 * place or by swapping a symlink); without them it serves plain HTTP.
 */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** How often the two files are stat-ed for a renewal. */
  reloadIntervalMs: number;
}

export const TLS_OPTIONS: OptionSpec[] = [
  {
    key: 'tlsCert',
    flag: '--tls-cert <file>',
    env: 'METASYNC_TLS_CERT',
    description: 'serve HTTPS (HTTP/2 and HTTP/1.1) with this PEM certificate chain (with --tls-key; reloaded when it changes)',
  },
  {
    key: 'tlsKey',
    flag: '--tls-key <file>',
    env: 'METASYNC_TLS_KEY',
    description: 'PEM private key of --tls-cert (reloaded when it changes)',
  },
  {
    key: 'tlsReloadIntervalMs',
    flag: '--tls-reload-interval-ms <ms>',
    env: 'METASYNC_TLS_RELOAD_INTERVAL_MS',
    description: 'how often the certificate and key files are checked for a renewal',
    defaultValue: '60000',
  },
];

export const TLS_SCHEMA_SHAPE = {
  tlsCert: z.string().min(1).optional(),
  tlsKey: z.string().min(1).optional(),
  tlsReloadIntervalMs: z.coerce.number().int().min(50).max(86_400_000),
} as const;

export interface RawTlsOptions {
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  tlsReloadIntervalMs: number;
}

/** A problem for the config error when only one of the pair is given (the other half would be silently plain HTTP). */
export function tlsPairProblem(raw: RawTlsOptions): { path: string; message: string } | undefined {
  if ((raw.tlsCert === undefined) === (raw.tlsKey === undefined)) return undefined;
  return raw.tlsCert === undefined
    ? { path: 'tlsCert', message: '--tls-key needs --tls-cert / METASYNC_TLS_CERT too (both or neither)' }
    : { path: 'tlsKey', message: '--tls-cert needs --tls-key / METASYNC_TLS_KEY too (both or neither)' };
}

/** The TLS files out of a parsed config; undefined: plain HTTP. Call after `tlsPairProblem` found nothing. */
export function pickTlsFiles(raw: RawTlsOptions): TlsFiles | undefined {
  if (raw.tlsCert === undefined || raw.tlsKey === undefined) return undefined;
  return { certFile: raw.tlsCert, keyFile: raw.tlsKey, reloadIntervalMs: raw.tlsReloadIntervalMs };
}
