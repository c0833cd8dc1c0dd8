/**
 * What `GET /` answers on a primary or a mirror: a person who opens the
 * repository URL in a browser learns what it is and how to use it, instead of
 * a path error. Plain text with no host name in it: the Host header is the
 * client's to choose, and nothing a metasync node serves hard-codes a name.
 */
export function landingPageText(role: 'primary' | 'mirror'): string {
  const lines = [
    `metasync ${role}: a Composer repository.`,
    '',
    'Use this URL as a Composer repository (with packagist.org disabled, or beside it):',
    '  composer config repositories.metasync composer <this URL>',
    '',
    '  /packages.json            the repository root',
    '  /p2/<vendor>/<name>.json  tagged versions; ~dev.json for dev branches',
  ];
  if (role === 'primary') {
    lines.push(
      '  /status                   every mirror, its lag and health',
      '  /metadata/changes.json    Packagist-compatible change feed',
      '  /sync/v1/state            the sync protocol (docs/protocol.md)',
    );
  } else {
    lines.push(
      '  /health/fresh             200 while this mirror is within its lag bound',
      '  /healthz                  200 while the process is alive',
    );
  }
  lines.push('  /metrics                  Prometheus metrics', '');
  return lines.join('\n');
}
