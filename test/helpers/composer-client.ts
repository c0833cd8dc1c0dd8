/**
 * Runs Debian's real Composer 2.5 client against a metasync repository URL.
 *
 * Each call gets its own temp project, COMPOSER_HOME and cache, packagist.org
 * disabled, proxies cleared, http allowed only because the URL is loopback, and
 * `composer update --no-install`: Composer downloads packages.json and the p2
 * files, resolves, and writes composer.lock without fetching any dist.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ResolveOptions {
  /** e.g. `http://127.0.0.1:41234` (loopback only). */
  repoUrl: string;
  require: Record<string, string>;
  minimumStability?: 'dev' | 'alpha' | 'beta' | 'RC' | 'stable';
  timeoutMs?: number;
  /**
   * For an https:// repository: Composer's `cafile` (the CA it verifies the mirror with), and
   * `secure-http` left at Composer's default (on), as a real deployment runs it.
   */
  cafile?: string;
}

export interface LockedPackage {
  name: string;
  version: string;
  /** The dist URL Composer would download (never fetched here). */
  distUrl: string | undefined;
}

export interface ResolveResult {
  packages: LockedPackage[];
  /** name -> version, for quick assertions. */
  versions: Record<string, string>;
  durationMs: number;
  output: string;
}

function assertLoopback(repoUrl: string): void {
  const host = new URL(repoUrl).hostname;
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '[::1]')
    throw new Error(`resolveWithComposer only talks to loopback, got ${repoUrl}`);
}

/** Resolves `require` from the repository at `repoUrl` with the real Composer client; throws with Composer's output on failure. */
export async function resolveWithComposer(options: ResolveOptions): Promise<ResolveResult> {
  assertLoopback(options.repoUrl);
  const dir = await mkdtemp(join(tmpdir(), 'metasync-composer-'));
  try {
    const composerJson = {
      name: 'metasync-test/project',
      type: 'project',
      require: options.require,
      'minimum-stability': options.minimumStability ?? 'stable',
      'prefer-stable': true,
      repositories: [{ type: 'composer', url: options.repoUrl }, { 'packagist.org': false }],
      config: {
        ...(options.cafile === undefined ? { 'secure-http': false } : { cafile: options.cafile }),
        'allow-plugins': false,
        'platform-check': false,
        'cache-dir': join(dir, 'cache'),
      },
    };
    await writeFile(join(dir, 'composer.json'), JSON.stringify(composerJson, null, 2));
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: dir,
      COMPOSER_HOME: join(dir, 'home'),
      COMPOSER_CACHE_DIR: join(dir, 'cache'),
      COMPOSER_ALLOW_SUPERUSER: '1',
      COMPOSER_NO_INTERACTION: '1',
      COMPOSER_NO_AUDIT: '1',
      COMPOSER_DISABLE_XDEBUG_WARN: '1',
    };
    const startedMs = Date.now();
    const args = [
      'update',
      '--no-install',
      '--no-interaction',
      '--no-progress',
      '--no-plugins',
      '--no-scripts',
      '--ignore-platform-reqs',
      '--no-ansi',
      '-v',
    ];
    const output = await new Promise<string>((resolve, reject) => {
      execFile(
        'composer',
        args,
        { cwd: dir, env, timeout: options.timeoutMs ?? 60_000, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 },
        (err, stdout, stderr) => {
          const text = `${stdout}\n${stderr}`;
          if (err)
            reject(new Error(`composer update failed (${err.killed ? 'timed out' : `exit ${String(err.code)}`}): ${text.slice(-4000)}`));
          else resolve(text);
        },
      );
    });
    const lock = JSON.parse(await readFile(join(dir, 'composer.lock'), 'utf8')) as {
      packages: Array<{ name: string; version: string; dist?: { url?: string } }>;
    };
    const packages = lock.packages.map((pkg) => ({ name: pkg.name, version: pkg.version, distUrl: pkg.dist?.url }));
    return {
      packages,
      versions: Object.fromEntries(packages.map((pkg) => [pkg.name, pkg.version])),
      durationMs: Date.now() - startedMs,
      output,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const PHP_ORACLE = `
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

/**
 * Runs the PHP code Composer clients run (Debian's composer package: VersionParser,
 * version_compare, MetadataMinifier) on a batch of inputs, so TypeScript ports can be
 * checked against it.
 */
export function runComposerPhpOracle(input: OracleInput): OracleOutput {
  const stdout = execFileSync('php', ['-d', 'error_reporting=0', '-r', PHP_ORACLE], {
    input: JSON.stringify(input),
    encoding: 'utf8',
    timeout: 20_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(stdout) as OracleOutput;
}

export interface InstallOptions {
  /** The project directory (created by the caller; it may hold a composer.lock to install from). */
  dir: string;
  repoUrl: string;
  require: Record<string, string>;
  timeoutMs?: number;
}

/**
 * `composer install` with the real client in `dir`: with a composer.lock there it installs
 * exactly what the lock names (dist mirrors included), else it resolves first. The Composer
 * cache is `dir/cache`, so a new dir starts with an empty cache. Returns Composer's output.
 */
export async function installWithComposer(options: InstallOptions): Promise<string> {
  assertLoopback(options.repoUrl);
  const composerJson = {
    name: 'metasync-test/project',
    type: 'project',
    require: options.require,
    repositories: [{ type: 'composer', url: options.repoUrl }, { 'packagist.org': false }],
    config: { 'secure-http': false, 'allow-plugins': false, 'platform-check': false, 'cache-dir': join(options.dir, 'cache') },
  };
  await writeFile(join(options.dir, 'composer.json'), JSON.stringify(composerJson, null, 2));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: options.dir,
    COMPOSER_HOME: join(options.dir, 'home'),
    COMPOSER_CACHE_DIR: join(options.dir, 'cache'),
    COMPOSER_ALLOW_SUPERUSER: '1',
    COMPOSER_NO_INTERACTION: '1',
    COMPOSER_NO_AUDIT: '1',
    COMPOSER_DISABLE_XDEBUG_WARN: '1',
  };
  const args = [
    'install',
    '--prefer-dist',
    '--no-interaction',
    '--no-progress',
    '--no-plugins',
    '--no-scripts',
    '--ignore-platform-reqs',
    '--no-ansi',
    '-vvv',
  ];
  return new Promise<string>((resolve, reject) => {
    execFile(
      'composer',
      args,
      { cwd: options.dir, env, timeout: options.timeoutMs ?? 90_000, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const text = `${stdout}\n${stderr}`;
        if (err)
          reject(new Error(`composer install failed (${err.killed ? 'timed out' : `exit ${String(err.code)}`}): ${text.slice(-6000)}`));
        else resolve(text);
      },
    );
  });
}
