import { execFileSync } from 'node:child_process';

/**
 * Runs Debian's Composer PHP libraries (the real VersionParser, version_compare
 * and MetadataMinifier) on a batch of inputs, so the TypeScript ports are
 * checked against the code Composer clients actually run.
 */
const SCRIPT = `
require '/usr/share/php/Composer/autoload.php';
$in = json_decode(stream_get_contents(STDIN), true);
$parser = new Composer\\Semver\\VersionParser();
$out = ['normalize' => [], 'stability' => [], 'compare' => [], 'minify' => []];
foreach ($in['normalize'] as $v) {
  try { $out['normalize'][] = $parser->normalize($v); } catch (\\Throwable $e) { $out['normalize'][] = null; }
  $out['stability'][] = Composer\\Semver\\VersionParser::parseStability($v);
}
foreach ($in['compare'] as $pair) { $out['compare'][] = version_compare($pair[0], $pair[1]); }
foreach ($in['minify'] as $versions) { $out['minify'][] = Composer\\MetadataMinifier\\MetadataMinifier::minify($versions); }
echo json_encode($out, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION);
`;

export interface OracleInput {
  normalize: string[];
  compare: Array<[string, string]>;
  minify: unknown[][];
}

export interface OracleOutput {
  normalize: Array<string | null>;
  stability: string[];
  compare: number[];
  minify: unknown[][];
}

export function runPhpOracle(input: OracleInput): OracleOutput {
  const stdout = execFileSync('php', ['-d', 'error_reporting=0', '-r', SCRIPT], {
    input: JSON.stringify(input),
    encoding: 'utf8',
    timeout: 20_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(stdout) as OracleOutput;
}
