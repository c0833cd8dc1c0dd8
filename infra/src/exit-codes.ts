import type { ErrorCode } from '@metasync/shared';

/** The CLI's exit codes; `metasync --help` prints this table. */
export const EXIT = {
  ok: 0,
  /** `status`: something is not healthy; or an unexpected error. */
  failure: 1,
  usage: 2,
  dns: 3,
  timeout: 4,
  unreachable: 5,
  /** `verify` found files that differ from the primary. */
  differences: 6,
  /** retire/roll: it would leave a region or the whole name with no fresh mirror (--force overrides). */
  refused: 7,
  launch: 8,
} as const;

export const EXIT_HELP = `Exit codes:
  0  success
  1  status: the primary or a mirror is not healthy; or an unexpected error
  2  invalid command line or config (METASYNC_ERR_CLI_USAGE, METASYNC_ERR_CONFIG_INVALID),
     or a Node.js older than 24 (METASYNC_ERR_NODE_UNSUPPORTED)
  3  a DNS provider call failed after retries (METASYNC_ERR_DNS_CALL_FAILED)
  4  a wait ran past --timeout-ms (METASYNC_ERR_CLI_TIMEOUT)
  5  the primary or a mirror could not be reached (METASYNC_ERR_TLS_HANDSHAKE: its certificate is not
     trusted: --ca) or answered outside the protocol; mirrors list: the primary could not be asked
  6  verify: the mirror's files differ from the primary's
  7  mirror retire / mirrors roll refused: a region or the whole name would be left with no fresh
     mirror in DNS (METASYNC_ERR_CLI_NO_FRESH_MIRROR; --force overrides)
  8  a launcher could not start, find or stop a mirror server (METASYNC_ERR_LAUNCH_FAILED)`;

export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case 'METASYNC_ERR_CLI_USAGE':
    case 'METASYNC_ERR_CONFIG_INVALID':
    case 'METASYNC_ERR_NODE_UNSUPPORTED':
      return EXIT.usage;
    case 'METASYNC_ERR_DNS_CALL_FAILED':
      return EXIT.dns;
    case 'METASYNC_ERR_CLI_TIMEOUT':
      return EXIT.timeout;
    case 'METASYNC_ERR_SYNC_UNREACHABLE':
    case 'METASYNC_ERR_SYNC_PROTOCOL':
    case 'METASYNC_ERR_TLS_HANDSHAKE':
      return EXIT.unreachable;
    case 'METASYNC_ERR_CLI_NO_FRESH_MIRROR':
      return EXIT.refused;
    case 'METASYNC_ERR_LAUNCH_FAILED':
      return EXIT.launch;
    default:
      return EXIT.failure;
  }
}
