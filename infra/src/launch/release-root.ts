import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { metasyncError } from '@metasync/shared';

const execFileAsync = promisify(execFile);

/** The tree this CLI runs from (a checkout or an unpacked release): infra/{src,dist}/launch/ is three levels down. */
export const OWN_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export function ownVersion(): string {
  return (JSON.parse(readFileSync(join(OWN_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

export const MIRROR_MAIN = join('packages', 'mirror', 'dist', 'main.js');

/**
 * The mirror main.js of a release version: `releases[version]` names a release
 * dir (the unpacked `pnpm release` tree, or a checkout with dist/ built) or its
 * .tar.gz, unpacked once under `<launchDir>/releases/<version>/`; without an
 * entry, this CLI's own version runs this tree's build.
 */
export async function mirrorMainFor(input: {
  version: string;
  releases: Readonly<Record<string, string>>;
  launchDir: string;
}): Promise<string> {
  const source = input.releases[input.version];
  let root: string;
  if (source === undefined) {
    if (input.version !== ownVersion())
      throw metasyncError(
        'METASYNC_ERR_CLI_USAGE',
        `release ${input.version} is unknown: this CLI is ${ownVersion()}; name its release dir or .tar.gz in the config's launch.local.releases["${input.version}"]`,
        { version: input.version },
      );
    root = OWN_ROOT;
  } else if (source.endsWith('.tar.gz') || source.endsWith('.tgz')) {
    root = await unpack(resolve(source), join(input.launchDir, 'releases', input.version));
  } else root = resolve(source);
  const main = join(root, MIRROR_MAIN);
  if (!existsSync(main))
    throw metasyncError(
      'METASYNC_ERR_CLI_USAGE',
      `release ${input.version} at ${root} has no ${MIRROR_MAIN} (not built? run pnpm build or pnpm release)`,
      {
        version: input.version,
        path: main,
      },
    );
  return main;
}

/** Unpacks a release tarball (one top-level dir) into `target`, through a temp dir and a rename, once. */
async function unpack(tarball: string, target: string): Promise<string> {
  if (existsSync(join(target, MIRROR_MAIN))) return target;
  if (!existsSync(tarball)) throw metasyncError('METASYNC_ERR_CLI_USAGE', `release tarball ${tarball} does not exist`, { path: tarball });
  const temp = `${target}.unpacking-${process.pid}`;
  await rm(temp, { recursive: true, force: true });
  await mkdir(temp, { recursive: true });
  try {
    await execFileAsync('tar', ['-xzf', tarball, '-C', temp, '--strip-components=1'], { timeout: 120_000 });
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    throw metasyncError('METASYNC_ERR_CLI_USAGE', `cannot unpack release ${tarball}: ${(err as Error).message}`, { path: tarball }, err);
  }
  await rm(target, { recursive: true, force: true });
  await rename(temp, target);
  return target;
}
